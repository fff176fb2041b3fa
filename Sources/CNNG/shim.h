// Debian's libnng-dev ships no pkg-config file; the module map links `nng` directly.
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
