// GLPK (GNU Linear Programming Kit) from Debian's libglpk-dev, for LopperAllocation's exact
// multi-budget solve. Debian ships no pkg-config file; the module map links `glpk` directly.
#include <glpk.h>
