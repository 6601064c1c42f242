/* A WASI test program: prints its arguments, one environment variable and the names of
 * its preopened directories with printf, then exits with the status given as its first
 * argument (default 0). */
#include <stdio.h>
#include <stdlib.h>
#include <wasi/api.h>

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
    for (__wasi_fd_t fd = 3;; fd++) {
        __wasi_prestat_t prestat;
        char name[256];
        if (__wasi_fd_prestat_get(fd, &prestat) || prestat.u.dir.pr_name_len >= sizeof name ||
            __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, prestat.u.dir.pr_name_len))
            break;
        printf("preopen %u: %.*s\n", fd, (int)prestat.u.dir.pr_name_len, name);
    }
    fprintf(stderr, "to stderr\n");
    exit(argc > 1 ? atoi(argv[1]) : 0);
}
