/* The error table: every code has a distinct name and message. */
#include "cordon_error.h"
#include "harness.h"

TEST(names_and_messages_are_distinct)
{
    static const int codes[] = {
#define X(name, val, msg) CORDON_##name,
        CORDON_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        CHECK_LT(codes[i], 0);
        CHECK(strncmp(cordon_errname(codes[i]), "CORDON_E", 8) == 0);
        CHECK(strcmp(cordon_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = i + 1; j < n; j++) {
            CHECK_NE(codes[i], codes[j]);
            CHECK(strcmp(cordon_strerror(codes[i]),
                         cordon_strerror(codes[j])) != 0);
        }
    }
    CHECK_STREQ(cordon_errname(CORDON_ETRUNC), "CORDON_ETRUNC");
    CHECK_STREQ(cordon_errname(0), "CORDON_OK");
    CHECK_STREQ(cordon_strerror(12345), "unknown error");
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(names_and_messages_are_distinct);
    return TH_END();
}
