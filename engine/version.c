#include "cordon.h"

#ifndef CORDON_VERSION
#define CORDON_VERSION "0.0.0"
#endif

const char *cordon_version(void)
{
    return CORDON_VERSION;
}
