// prctl(2) is variadic, so Swift cannot call it directly; this wraps the one use Lopper has.
#ifdef __linux__
#include <sys/prctl.h>
#endif

/// Asks the kernel to send `signal` to this process when its parent thread exits (Linux);
/// returns 0, or -1 with errno set. Elsewhere it does nothing and returns -1.
static inline int lopper_signal_on_parent_death(int signal) {
#ifdef __linux__
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
#else
    (void)signal;
    return -1;
#endif
}
