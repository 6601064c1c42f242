/* A WASI test program: prints its arguments and one environment variable with printf,
 * then exits with the status given as its first argument (default 0). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *greeting = getenv("GREETING");
    printf("GREETING=%s\n", greeting ? greeting : "(unset)");
    long sum = 0;
    for (int i = 1; i <= 100; i++)
        sum += i * i;
    printf("sum of squares 1..100=%ld, pi~%.5f\n", sum, 355.0 / 113.0);
    fprintf(stderr, "to stderr\n");
    exit(argc > 1 ? atoi(argv[1]) : 0);
}
