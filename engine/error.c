#include "cordon_error.h"

const char *cordon_strerror(int err)
{
    switch (err) {
    case CORDON_OK:
        return "success";
#define CORDON__ERR_MSG(name, val, msg)                                        \
    case CORDON_##name:                                                        \
        return msg;
        CORDON_ERRNO_MAP(CORDON__ERR_MSG)
#undef CORDON__ERR_MSG
    }
    return "unknown error";
}

const char *cordon_errname(int err)
{
    switch (err) {
    case CORDON_OK:
        return "CORDON_OK";
#define CORDON__ERR_NAME(name, val, msg)                                       \
    case CORDON_##name:                                                        \
        return "CORDON_" #name;
        CORDON_ERRNO_MAP(CORDON__ERR_NAME)
#undef CORDON__ERR_NAME
    }
    return "CORDON_UNKNOWN";
}
