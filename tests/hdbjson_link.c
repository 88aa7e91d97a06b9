/* hdbjson_link.c - builds the tools' JSON codec (tools/hdbjson.c) into the
 * test helpers, so that test programs can call hdbjson_* directly: tests
 * link libcordon.a and the helpers in tests/, not the tools' objects. */
#include "../tools/hdbjson.c"
