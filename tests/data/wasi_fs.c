/* A WASI preview1 file-system test program. Every line it prints must be the same under
 * stackstitch and Wasmtime; failures print the WASI errno number, so an errno that differs
 * shows as a differing line. It expects two preopens, `/sandbox` and `data` (see
 * tests/test_wasi_fs.py for the tree it starts from), and some bytes on stdin.
 *
 * Values that differ between any two runs (inode numbers, current times, random bytes)
 * are printed only as properties ("increasing", "nonzero"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static __wasi_fd_t sandbox = (__wasi_fd_t)-1, data = (__wasi_fd_t)-1;

/* A libc call: "ok" or the errno it set. */
static void libc(const char *what, int result) {
    if (result < 0)
        printf("%s: errno %d\n", what, errno);
    else
        printf("%s: ok\n", what);
}

/* A raw WASI call's errno (0 is success). */
static void raw(const char *what, __wasi_errno_t error) { printf("%s: %u\n", what, error); }

static __wasi_errno_t open_at(__wasi_fd_t dir, __wasi_lookupflags_t lookup, const char *path,
                              __wasi_oflags_t oflags, __wasi_rights_t rights,
                              __wasi_fdflags_t fdflags, __wasi_fd_t *fd) {
    return __wasi_path_open(dir, lookup, path, oflags, rights, rights, fdflags, fd);
}

#define RIGHTS_RW (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK | \
                   __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FILESTAT_GET)

static void print_filestat(const char *what, const __wasi_filestat_t *st) {
    printf("%s: type %u nlink %llu size %llu\n", what, st->filetype,
           (unsigned long long)st->nlink, (unsigned long long)st->size);
}

static void print_file(const char *path) {
    char buf[256];
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("cat %s: errno %d\n", path, errno);
        return;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("cat %s: %zu bytes: ", path, n);
    for (size_t i = 0; i < n; i++)
        putchar(buf[i] == '\n' ? '|' : buf[i]);
    putchar('\n');
}

static void preopens(void) {
    printf("== preopens\n");
    for (__wasi_fd_t fd = 3;; fd++) {
        __wasi_prestat_t prestat;
        __wasi_errno_t error = __wasi_fd_prestat_get(fd, &prestat);
        if (error) {
            printf("prestat %u: %u\n", fd, error);
            break;
        }
        char name[64] = {0};
        size_t len = prestat.u.dir.pr_name_len;
        raw("prestat_dir_name short", __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len - 1));
        raw("prestat_dir_name", __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len));
        printf("prestat %u: tag %u len %zu name %s\n", fd, prestat.tag, len, name);
        if (strcmp(name, "/sandbox") == 0)
            sandbox = fd;
        if (strcmp(name, "data") == 0)
            data = fd;
    }
    __wasi_prestat_t prestat;
    char name[8];
    raw("prestat of stdout", __wasi_fd_prestat_get(1, &prestat));
    raw("prestat_dir_name of stdout", __wasi_fd_prestat_dir_name(1, (uint8_t *)name, 8));
}

static void fdstats(void) {
    printf("== fdstat\n");
    __wasi_fd_t fds[] = {0, 1, 2, sandbox, data, 99};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        __wasi_fdstat_t st;
        __wasi_errno_t error = __wasi_fd_fdstat_get(fds[i], &st);
        if (error) {
            printf("fdstat %u: %u\n", fds[i], error);
            continue;
        }
        printf("fdstat %u: type %u flags %u base %llx inheriting %llx\n", fds[i], st.fs_filetype,
               st.fs_flags, (unsigned long long)st.fs_rights_base,
               (unsigned long long)st.fs_rights_inheriting);
    }
    __wasi_filestat_t st;
    raw("filestat of stdout", __wasi_fd_filestat_get(1, &st));
    print_filestat("filestat of stdout", &st);
}

static void files(void) {
    printf("== files\n");
    int fd = open("/sandbox/notes.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    printf("open notes.txt for writing: fd %d\n", fd);
    printf("write: %zd\n", write(fd, "hello, file\n", 12));
    struct iovec iov[2] = {{"second ", 7}, {"line\n", 5}};
    ssize_t total = 0;
    while (total < 12) { /* a short write is legal: finish it */
        ssize_t n = writev(fd, iov, 2);
        if (n <= 0)
            break;
        total += n;
        for (int i = 0; i < 2; i++) {
            size_t take = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            n -= take;
        }
    }
    printf("writev: %zd\n", total);
    __wasi_filesize_t offset = 0;
    raw("fd_tell", __wasi_fd_tell(fd, &offset));
    printf("offset %llu\n", (unsigned long long)offset);
    printf("pwrite at 0: %zd\n", pwrite(fd, "J", 1, 0));
    printf("lseek cur after pwrite: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    printf("lseek end: %lld\n", (long long)lseek(fd, 0, SEEK_END));
    printf("lseek set 100: %lld\n", (long long)lseek(fd, 100, SEEK_SET));
    printf("write past the end: %zd\n", write(fd, "!", 1));
    libc("lseek negative", (int)lseek(fd, -1000, SEEK_CUR));
    char buf[64];
    libc("read from a write-only fd", (int)read(fd, buf, sizeof buf));
    libc("ftruncate to 24", ftruncate(fd, 24));
    struct stat st;
    libc("fstat", fstat(fd, &st));
    printf("size %lld nlink %llu regular %d\n", (long long)st.st_size,
           (unsigned long long)st.st_nlink, S_ISREG(st.st_mode));
    libc("fsync", fsync(fd));
    libc("fdatasync", fdatasync(fd));
    raw("fd_advise", __wasi_fd_advise(fd, 0, 10, __WASI_ADVICE_SEQUENTIAL));
    raw("fd_allocate", __wasi_fd_allocate(fd, 0, 4096));
    raw("fd_fdstat_set_rights", __wasi_fd_fdstat_set_rights(fd, 0, 0));
    libc("close", close(fd));
    libc("close again", close(fd));
    print_file("/sandbox/notes.txt");

    fd = open("/sandbox/notes.txt", O_RDONLY);
    printf("open notes.txt for reading: fd %d\n", fd);
    memset(buf, 0, sizeof buf);
    struct iovec riov[2] = {{buf, 5}, {buf + 5, 5}};
    total = 0;
    while (total < 10) {
        ssize_t n = readv(fd, riov, 2);
        if (n <= 0)
            break;
        total += n;
        for (int i = 0; i < 2; i++) {
            size_t take = (size_t)n < riov[i].iov_len ? (size_t)n : riov[i].iov_len;
            riov[i].iov_base = (char *)riov[i].iov_base + take;
            riov[i].iov_len -= take;
            n -= take;
        }
    }
    printf("readv: %zd %.10s\n", total, buf);
    printf("pread at 7: %zd ", pread(fd, buf, 4, 7));
    printf("%.4s\n", buf);
    printf("pread past the end: %zd\n", pread(fd, buf, 4, 1000));
    printf("lseek cur after pread: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    printf("read rest: %zd\n", read(fd, buf, sizeof buf));
    printf("read at eof: %zd\n", read(fd, buf, sizeof buf));
    libc("write to a read-only fd", (int)write(fd, "x", 1));
    libc("pwrite to a read-only fd", (int)pwrite(fd, "x", 1, 0));
    libc("ftruncate a read-only fd", ftruncate(fd, 0));
    close(fd);

    fd = open("/sandbox/notes.txt", O_WRONLY | O_APPEND);
    printf("open for append: fd %d\n", fd);
    printf("fcntl getfl append: %d\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
    printf("append write: %zd\n", write(fd, "tail\n", 5));
    printf("lseek cur after append: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    printf("pwrite in append mode: %zd\n", pwrite(fd, "P", 1, 0));
    libc("fcntl setfl 0", fcntl(fd, F_SETFL, 0));
    printf("fcntl getfl append: %d\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
    lseek(fd, 0, SEEK_SET);
    printf("write at 0 without append: %zd\n", write(fd, "W", 1));
    libc("fcntl setfl append|nonblock", fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK));
    __wasi_fdstat_t fdst;
    raw("fdstat", __wasi_fd_fdstat_get(fd, &fdst));
    printf("flags %u type %u base %llx\n", fdst.fs_flags, fdst.fs_filetype,
           (unsigned long long)fdst.fs_rights_base);
    raw("set_flags sync", __wasi_fd_fdstat_set_flags(fd, __WASI_FDFLAGS_SYNC));
    printf("append write: %zd\n", write(fd, "end\n", 4));
    close(fd);
    print_file("/sandbox/notes.txt");

    /* Opening in every mode the errors can tell apart. */
    libc("open a missing file", open("/sandbox/missing.txt", O_RDONLY));
    libc("open excl an existing file", open("/sandbox/notes.txt", O_WRONLY | O_CREAT | O_EXCL, 0644));
    libc("open a directory for writing", open("/sandbox/sub", O_WRONLY));
    libc("open a file as a directory", open("/sandbox/notes.txt", O_RDONLY | O_DIRECTORY));
    libc("open below a file", open("/sandbox/notes.txt/x", O_RDONLY));
    libc("open with a trailing slash", open("/sandbox/notes.txt/", O_RDONLY));
    libc("open create in a missing dir", open("/sandbox/nowhere/x", O_WRONLY | O_CREAT, 0644));
    fd = open("/sandbox/sub", O_RDONLY | O_DIRECTORY);
    printf("open a directory: fd %d\n", fd);
    libc("read a directory", (int)read(fd, buf, sizeof buf));
    libc("lseek a directory", (int)lseek(fd, 0, SEEK_SET));
    raw("fd_tell a directory", __wasi_fd_tell(fd, &offset));
    raw("fd_filestat_set_size a directory", __wasi_fd_filestat_set_size(fd, 0));
    __wasi_filestat_t fst;
    raw("fd_filestat_get a directory", __wasi_fd_filestat_get(fd, &fst));
    print_filestat("directory", &fst);
    raw("fd_fdstat_get a directory", __wasi_fd_fdstat_get(fd, &fdst));
    printf("type %u flags %u base %llx inheriting %llx\n", fdst.fs_filetype, fdst.fs_flags,
           (unsigned long long)fdst.fs_rights_base, (unsigned long long)fdst.fs_rights_inheriting);
    raw("set_flags on a directory", __wasi_fd_fdstat_set_flags(fd, 0));
    close(fd);

    /* Raw path_open: rights decide read and write, O_TRUNC/O_CREAT/O_EXCL come from oflags. */
    __wasi_fd_t wfd, rfd, ofd;
    raw("path_open create", open_at(sandbox, 0, "raw.bin", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC,
                                    RIGHTS_RW, 0, &wfd));
    printf("raw fd %u\n", wfd);
    __wasi_ciovec_t ciov = {(const uint8_t *)"0123456789", 10};
    __wasi_size_t n = 0;
    raw("fd_write", __wasi_fd_write(wfd, &ciov, 1, &n));
    raw("fd_pwrite", __wasi_fd_pwrite(wfd, &ciov, 1, 20, &n));
    printf("pwrote %lu\n", n);
    uint8_t rbuf[40] = {0};
    __wasi_iovec_t iov1 = {rbuf, sizeof rbuf};
    raw("fd_pread", __wasi_fd_pread(wfd, &iov1, 1, 5, &n));
    printf("pread %lu bytes, byte 5 '%c', byte 10 %u, byte 20 '%c'\n", n, rbuf[0], rbuf[5], rbuf[15]);
    raw("fd_seek", __wasi_fd_seek(wfd, -3, __WASI_WHENCE_END, &offset));
    printf("offset %llu\n", (unsigned long long)offset);
    raw("fd_read", __wasi_fd_read(wfd, &iov1, 1, &n));
    printf("read %lu bytes: %.3s\n", n, rbuf);
    raw("fd_read at eof", __wasi_fd_read(wfd, &iov1, 1, &n));
    printf("read %lu bytes\n", n);
    raw("fd_filestat_set_size 4", __wasi_fd_filestat_set_size(wfd, 4));
    raw("fd_filestat_set_times", __wasi_fd_filestat_set_times(wfd, 1000000000ull * 1600000000,
                                                            1000000000ull * 1500000000 + 123456789,
                                                            __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    raw("fd_filestat_set_times set and now", __wasi_fd_filestat_set_times(
        wfd, 0, 0, __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW));
    raw("fd_filestat_get", __wasi_fd_filestat_get(wfd, &fst));
    print_filestat("raw.bin", &fst);
    printf("atim %llu mtim %llu\n", (unsigned long long)fst.atim, (unsigned long long)fst.mtim);
    raw("path_open read only", open_at(sandbox, 0, "raw.bin", 0, __WASI_RIGHTS_FD_READ, 0, &rfd));
    printf("read-only fd %u\n", rfd);
    raw("fd_write read only", __wasi_fd_write(rfd, &ciov, 1, &n));
    raw("fd_fdstat_get read only", __wasi_fd_fdstat_get(rfd, &fdst));
    printf("type %u flags %u base %llx\n", fdst.fs_filetype, fdst.fs_flags,
           (unsigned long long)fdst.fs_rights_base);
    raw("path_open excl", open_at(sandbox, 0, "raw.bin", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL,
                                  RIGHTS_RW, 0, &ofd));
    raw("path_open directory flag on a file", open_at(sandbox, 0, "raw.bin",
                                                      __WASI_OFLAGS_DIRECTORY, 0, 0, &ofd));
    raw("path_open trunc without write", open_at(sandbox, 0, "raw.bin", __WASI_OFLAGS_TRUNC,
                                                  __WASI_RIGHTS_FD_READ, 0, &ofd));
    raw("path_open a file as dirfd", open_at(rfd, 0, "x", 0, 0, 0, &ofd));
    raw("path_open stdout as dirfd", open_at(1, 0, "x", 0, 0, 0, &ofd));
    raw("path_open a closed dirfd", open_at(77, 0, "x", 0, 0, 0, &ofd));
    raw("path_open empty path", open_at(sandbox, 0, "", 0, 0, 0, &ofd));
    raw("path_open dot", open_at(sandbox, 0, ".", __WASI_OFLAGS_DIRECTORY, 0, 0, &ofd));
    printf("dot fd %d\n", ofd);
    raw("path_open dot for writing", open_at(sandbox, 0, ".", 0, __WASI_RIGHTS_FD_WRITE, 0, &ofd));
    raw("path_open create dot", open_at(sandbox, 0, ".", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0, &ofd));
    raw("path_open sub/..", open_at(sandbox, 0, "sub/..", __WASI_OFLAGS_DIRECTORY, 0, 0, &ofd));
    raw("path_open sub/./inner.txt", open_at(sandbox, 0, "sub/./inner.txt", 0, RIGHTS_RW, 0, &ofd));
    raw("path_open sub//inner.txt", open_at(sandbox, 0, "sub//inner.txt", 0, RIGHTS_RW, 0, &ofd));
    raw("path_open invalid utf-8", open_at(sandbox, 0, "\xff\xfe", 0, 0, 0, &ofd));
    raw("fd_close", __wasi_fd_close(rfd));
    raw("fd_close", __wasi_fd_close(wfd));
    raw("fd_close an unused fd", __wasi_fd_close(99));
}

static void renumbering(void) {
    printf("== fd numbers\n");
    int a = open("/sandbox/seed.txt", O_RDONLY);
    int b = open("/sandbox/notes.txt", O_RDONLY);
    int c = open("/sandbox/sub/inner.txt", O_RDONLY);
    printf("opened %d %d %d\n", a, b, c);
    close(a);
    close(b);
    int d = open("/sandbox/seed.txt", O_RDONLY);
    int e = open("/sandbox/seed.txt", O_RDONLY);
    int f = open("/sandbox/seed.txt", O_RDONLY);
    printf("after closing %d and %d: %d %d %d\n", a, b, d, e, f);
    raw("fd_renumber", __wasi_fd_renumber(c, d));
    char buf[32] = {0};
    printf("read renumbered: %zd %.9s\n", read(d, buf, 9), buf);
    libc("read the old number", (int)read(c, buf, 1));
    raw("fd_renumber to a closed fd", __wasi_fd_renumber(e, 90));
    raw("fd_renumber from a closed fd", __wasi_fd_renumber(90, e));
    raw("fd_renumber to itself", __wasi_fd_renumber(e, e));
    close(d);
    close(e);
    close(f);
    int g = open("/sandbox/seed.txt", O_RDONLY);
    printf("next fd %d\n", g);
    close(g);
}

static void stats(void) {
    printf("== stat\n");
    struct stat st;
    const char *paths[] = {"/sandbox/seed.txt", "/sandbox/sub", "/sandbox/link_in",
                           "/sandbox/missing", "/sandbox/seed.txt/x", "/sandbox/link_loop_a"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (stat(paths[i], &st) < 0) {
            printf("stat %s: errno %d\n", paths[i], errno);
        } else {
            printf("stat %s: dir %d reg %d lnk %d size %lld nlink %llu\n", paths[i],
                   S_ISDIR(st.st_mode), S_ISREG(st.st_mode), S_ISLNK(st.st_mode),
                   S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size,
                   S_ISDIR(st.st_mode) ? 0ULL : (unsigned long long)st.st_nlink);
        }
        if (lstat(paths[i], &st) < 0) {
            printf("lstat %s: errno %d\n", paths[i], errno);
        } else {
            printf("lstat %s: dir %d reg %d lnk %d size %lld\n", paths[i], S_ISDIR(st.st_mode),
                   S_ISREG(st.st_mode), S_ISLNK(st.st_mode),
                   S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
        }
    }
    struct timespec times[2] = {{1234567890, 5}, {1300000000, 999999999}};
    libc("utimensat", utimensat(AT_FDCWD, "/sandbox/seed.txt", times, 0));
    stat("/sandbox/seed.txt", &st);
    printf("times %lld.%09ld %lld.%09ld\n", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {1400000000, 0}};
    libc("utimensat omit atime", utimensat(AT_FDCWD, "/sandbox/seed.txt", omit, 0));
    stat("/sandbox/seed.txt", &st);
    printf("times %lld %lld\n", (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);
    libc("utimensat nofollow on a link",
         utimensat(AT_FDCWD, "/sandbox/link_in", times, AT_SYMLINK_NOFOLLOW));
    lstat("/sandbox/link_in", &st);
    printf("link mtime %lld\n", (long long)st.st_mtim.tv_sec);
    libc("utimensat missing", utimensat(AT_FDCWD, "/sandbox/missing", times, 0));
    raw("path_filestat_set_times set and now",
        __wasi_path_filestat_set_times(sandbox, 0, "seed.txt", 0, 0,
                                       __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW));
    __wasi_filestat_t fst;
    raw("path_filestat_get follow", __wasi_path_filestat_get(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW,
                                                             "link_in", &fst));
    print_filestat("link_in followed", &fst);
    raw("path_filestat_get nofollow", __wasi_path_filestat_get(sandbox, 0, "link_in", &fst));
    printf("link_in: type %u size %llu\n", fst.filetype, (unsigned long long)fst.size);
    raw("path_filestat_get stdout", __wasi_path_filestat_get(1, 0, "x", &fst));
}

static void directories(void) {
    printf("== directories\n");
    libc("mkdir", mkdir("/sandbox/made", 0755));
    libc("mkdir nested", mkdir("/sandbox/made/deeper", 0755));
    libc("mkdir existing", mkdir("/sandbox/made", 0755));
    libc("mkdir over a file", mkdir("/sandbox/seed.txt", 0755));
    libc("mkdir in a missing dir", mkdir("/sandbox/nowhere/x", 0755));
    libc("mkdir trailing slash", mkdir("/sandbox/made2/", 0755));
    int fd = open("/sandbox/made/deeper/file.txt", O_WRONLY | O_CREAT, 0644);
    write(fd, "deep\n", 5);
    close(fd);
    libc("rmdir not empty", rmdir("/sandbox/made"));
    libc("rmdir a file", rmdir("/sandbox/seed.txt"));
    libc("rmdir missing", rmdir("/sandbox/missing"));
    libc("rmdir a symlink", rmdir("/sandbox/link_in"));
    raw("path_remove_directory dot", __wasi_path_remove_directory(sandbox, "."));
    raw("path_remove_directory made/..", __wasi_path_remove_directory(sandbox, "made/deeper/.."));
    libc("unlink a directory", unlink("/sandbox/made"));
    libc("unlink missing", unlink("/sandbox/missing"));
    libc("unlink trailing slash", unlink("/sandbox/notes.txt/"));
    libc("rename file", rename("/sandbox/made/deeper/file.txt", "/sandbox/made/moved.txt"));
    libc("rmdir emptied", rmdir("/sandbox/made/deeper"));
    libc("rename over a file", rename("/sandbox/made/moved.txt", "/sandbox/notes_copy.txt"));
    libc("rename missing", rename("/sandbox/made/none", "/sandbox/x"));
    libc("rename a file over a directory", rename("/sandbox/notes_copy.txt", "/sandbox/made"));
    mkdir("/sandbox/full", 0755);
    close(open("/sandbox/full/f", O_WRONLY | O_CREAT, 0644));
    mkdir("/sandbox/empty", 0755);
    libc("rename a directory over a file", rename("/sandbox/made", "/sandbox/notes_copy.txt"));
    libc("rename a directory over a non-empty one", rename("/sandbox/made", "/sandbox/full"));
    libc("rename a directory over an empty one", rename("/sandbox/made", "/sandbox/empty"));
    libc("rename a directory into itself", rename("/sandbox/empty", "/sandbox/empty/inside"));
    libc("rename across preopens", rename("/sandbox/notes_copy.txt", "data/from_sandbox.txt"));
    raw("path_rename from stdout", __wasi_path_rename(1, "a", sandbox, "b"));
    libc("link", link("/sandbox/seed.txt", "/sandbox/seed_link.txt"));
    libc("link existing", link("/sandbox/seed.txt", "/sandbox/seed_link.txt"));
    libc("link a directory", link("/sandbox/sub", "/sandbox/sub_link"));
    libc("link missing", link("/sandbox/missing", "/sandbox/x"));
    raw("path_link follow", __wasi_path_link(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link_in",
                                             sandbox, "inner_hard.txt"));
    raw("path_link nofollow", __wasi_path_link(sandbox, 0, "link_in", sandbox, "link_in_hard"));
    struct stat st;
    lstat("/sandbox/seed.txt", &st);
    printf("seed nlink %llu\n", (unsigned long long)st.st_nlink);
    lstat("/sandbox/link_in_hard", &st);
    printf("link_in_hard is a link %d\n", S_ISLNK(st.st_mode));

    libc("symlink", symlink("seed.txt", "/sandbox/new_link"));
    libc("symlink existing", symlink("seed.txt", "/sandbox/new_link"));
    libc("symlink dangling", symlink("nothing/here", "/sandbox/dangling"));
    libc("symlink absolute", symlink("/etc/passwd", "/sandbox/abs_link"));
    libc("symlink upward", symlink("../outside", "/sandbox/up_link"));
    char target[64] = {0};
    ssize_t n = readlink("/sandbox/new_link", target, sizeof target);
    printf("readlink: %zd %.*s\n", n, (int)(n > 0 ? n : 0), target);
    n = readlink("/sandbox/dangling", target, 4);
    printf("readlink truncated: %zd %.*s\n", n, (int)(n > 0 ? n : 0), target);
    libc("readlink a file", (int)readlink("/sandbox/seed.txt", target, sizeof target));
    libc("readlink missing", (int)readlink("/sandbox/missing", target, sizeof target));
    __wasi_size_t used = 0;
    raw("path_readlink zero buffer", __wasi_path_readlink(sandbox, "new_link", (uint8_t *)target, 0, &used));
    printf("used %lu\n", used);
    raw("path_readlink through a link", __wasi_path_readlink(sandbox, "link_dir_in/inner.txt",
                                                             (uint8_t *)target, 64, &used));
    print_file("/sandbox/new_link");
    libc("open a dangling link", open("/sandbox/dangling", O_RDONLY));
    libc("create through a dangling link", open("/sandbox/dangling", O_WRONLY | O_CREAT, 0644));
    libc("unlink a link", unlink("/sandbox/new_link"));
    libc("stat after unlinking the link", access("/sandbox/seed.txt", F_OK));
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void listing(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) {
        printf("opendir %s: errno %d\n", path, errno);
        return;
    }
    char *names[64];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 64) {
        char *line = malloc(300);
        snprintf(line, 300, "%s(%d)", entry->d_name, entry->d_type);
        names[count++] = line;
    }
    closedir(dir);
    qsort(names, count, sizeof names[0], by_name);
    printf("ls %s:", path);
    for (int i = 0; i < count; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void readdir_raw(void) {
    printf("== fd_readdir\n");
    __wasi_fd_t fd;
    raw("open sub", open_at(sandbox, 0, "sub", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR, 0, &fd));
    uint8_t buf[512];
    __wasi_size_t used = 0;
    raw("fd_readdir", __wasi_fd_readdir(fd, buf, sizeof buf, 0, &used));
    printf("used %lu\n", used);
    /* Walk the entries: print d_next, type and name length; names go through a sorted check. */
    size_t pos = 0;
    int entries = 0;
    __wasi_dircookie_t last = 0;
    while (pos + sizeof(__wasi_dirent_t) <= used) {
        __wasi_dirent_t d;
        memcpy(&d, buf + pos, sizeof d);
        printf("  next %llu type %u namlen %u\n", (unsigned long long)d.d_next, d.d_type, d.d_namlen);
        pos += sizeof d + d.d_namlen;
        last = d.d_next;
        entries++;
    }
    printf("entries %d\n", entries);
    /* Resume from each cookie with a buffer too small for one entry. */
    for (__wasi_dircookie_t cookie = 0; cookie <= last; cookie++) {
        __wasi_size_t got = 0;
        __wasi_errno_t error = __wasi_fd_readdir(fd, buf, sizeof(__wasi_dirent_t) + 1, cookie, &got);
        __wasi_dirent_t d;
        memcpy(&d, buf, sizeof d);
        printf("  cookie %llu: %u used %lu", (unsigned long long)cookie, error, got);
        if (got >= sizeof d)
            printf(" next %llu namlen %u first '%c'", (unsigned long long)d.d_next, d.d_namlen,
                   got > sizeof d ? buf[sizeof d] : '-');
        printf("\n");
    }
    raw("fd_readdir tiny buffer", __wasi_fd_readdir(fd, buf, 3, 0, &used));
    printf("used %lu\n", used);
    raw("fd_readdir past the end", __wasi_fd_readdir(fd, buf, sizeof buf, 1000, &used));
    printf("used %lu\n", used);
    __wasi_fd_t file;
    open_at(sandbox, 0, "seed.txt", 0, __WASI_RIGHTS_FD_READ, 0, &file);
    raw("fd_readdir a file", __wasi_fd_readdir(file, buf, sizeof buf, 0, &used));
    raw("fd_readdir stdout", __wasi_fd_readdir(1, buf, sizeof buf, 0, &used));
    (void)__wasi_fd_close(file);
    (void)__wasi_fd_close(fd);
}

/* A path with a NUL in it cannot be passed through wasi-libc's wrappers (they take C
 * strings), so this one is imported directly. */
int32_t mkdir_import(int32_t fd, int32_t path, int32_t path_len)
    __attribute__((import_module("wasi_snapshot_preview1"), import_name("path_create_directory")));

/* Trailing slashes, and oflags that cannot go together. */
static void odd_paths(void) {
    printf("== odd paths and flags\n");
    __wasi_fd_t fd;
    __wasi_filestat_t st;
    uint8_t buf[16];
    __wasi_size_t used;
    raw("open directory|creat", open_at(sandbox, 0, "sub", __WASI_OFLAGS_DIRECTORY | __WASI_OFLAGS_CREAT,
                                        __WASI_RIGHTS_FD_READ, 0, &fd));
    raw("open directory|excl", open_at(sandbox, 0, "sub", __WASI_OFLAGS_DIRECTORY | __WASI_OFLAGS_EXCL,
                                       __WASI_RIGHTS_FD_READ, 0, &fd));
    raw("open directory|trunc", open_at(sandbox, 0, "sub", __WASI_OFLAGS_DIRECTORY | __WASI_OFLAGS_TRUNC,
                                        __WASI_RIGHTS_FD_READ, 0, &fd));
    raw("open a directory link as a directory, nofollow",
        open_at(sandbox, 0, "link_dir_in", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READ, 0, &fd));
    raw("create excl over a link", open_at(sandbox, 0, "link_in",
                                           __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, RIGHTS_RW, 0, &fd));
    __wasi_errno_t error = open_at(sandbox, 0, "link_dir_in/", 0, __WASI_RIGHTS_FD_READ, 0, &fd);
    raw("open link_dir_in/ nofollow", error);
    if (!error)
        (void)__wasi_fd_close(fd);
    raw("stat seed.txt/", __wasi_path_filestat_get(sandbox, 0, "seed.txt/", &st));
    raw("stat link_dir_in/", __wasi_path_filestat_get(sandbox, 0, "link_dir_in/", &st));
    raw("unlink link_dir_in/", __wasi_path_unlink_file(sandbox, "link_dir_in/"));
    raw("rmdir link_dir_in/", __wasi_path_remove_directory(sandbox, "link_dir_in/"));
    raw("readlink link_dir_in/", __wasi_path_readlink(sandbox, "link_dir_in/", buf, sizeof buf, &used));
    raw("mkdir seed.txt/", __wasi_path_create_directory(sandbox, "seed.txt/"));
    raw("rename seed.txt/ x", __wasi_path_rename(sandbox, "seed.txt/", sandbox, "x"));
    raw("rename seed.txt x/", __wasi_path_rename(sandbox, "seed.txt", sandbox, "x/"));
    raw("symlink to seed.txt/", __wasi_path_symlink("x", sandbox, "seed.txt/"));
    raw("symlink to new/", __wasi_path_symlink("x", sandbox, "new/"));
    raw("link to new/", __wasi_path_link(sandbox, 0, "seed.txt", sandbox, "new/"));
    raw("symlink with an empty target", __wasi_path_symlink("", sandbox, "new"));
    raw("set_times link_dir_in/ nofollow", __wasi_path_filestat_set_times(
        sandbox, 0, "link_dir_in/", 0, 1700000000000000000ull, __WASI_FSTFLAGS_MTIM));
    static const char with_nul[] = "made\0x";
    printf("mkdir with a NUL: %d\n", mkdir_import(sandbox, (int32_t)with_nul, sizeof with_nul - 1));
}

/* Each attempt to leave a preopen must fail, and with the same errno as on Wasmtime. */
static void escapes(void) {
    printf("== escapes\n");
    __wasi_fd_t fd;
    const char *opens[] = {
        "..", "../outside/secret.txt", "sub/../../outside/secret.txt", "/etc/passwd", "/",
        "link_abs", "link_abs_in", "link_up", "link_chain1", "link_dir_up/secret.txt",
        "link_back_in", "link_loop_a", "sub/link_up2", "link_dir_up", "sub/../..",
        "link_in", "sub/link_seed", "link_dir_in/inner.txt", "sub/..",
    };
    for (size_t i = 0; i < sizeof opens / sizeof opens[0]; i++) {
        char what[80];
        snprintf(what, sizeof what, "open %s", opens[i]);
        __wasi_errno_t error = open_at(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, opens[i], 0,
                                       __WASI_RIGHTS_FD_READ, 0, &fd);
        raw(what, error);
        if (!error)
            (void)__wasi_fd_close(fd);
    }
    raw("open link_up nofollow", open_at(sandbox, 0, "link_up", 0, __WASI_RIGHTS_FD_READ, 0, &fd));
    raw("open link_in nofollow", open_at(sandbox, 0, "link_in", 0, __WASI_RIGHTS_FD_READ, 0, &fd));
    raw("open link_dir_up/ nofollow", open_at(sandbox, 0, "link_dir_up/secret.txt", 0,
                                              __WASI_RIGHTS_FD_READ, 0, &fd));
    raw("create through link_up", open_at(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link_up",
                                          __WASI_OFLAGS_CREAT, RIGHTS_RW, 0, &fd));
    raw("create ../outside/new.txt", open_at(sandbox, 0, "../outside/new.txt", __WASI_OFLAGS_CREAT,
                                             RIGHTS_RW, 0, &fd));
    raw("create link_dir_up/new.txt", open_at(sandbox, 0, "link_dir_up/new.txt",
                                              __WASI_OFLAGS_CREAT, RIGHTS_RW, 0, &fd));
    __wasi_filestat_t st;
    raw("stat link_up follow", __wasi_path_filestat_get(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW,
                                                        "link_up", &st));
    raw("stat link_up nofollow", __wasi_path_filestat_get(sandbox, 0, "link_up", &st));
    printf("link_up: type %u\n", st.filetype);
    raw("stat link_abs follow", __wasi_path_filestat_get(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW,
                                                         "link_abs", &st));
    raw("stat ..", __wasi_path_filestat_get(sandbox, 0, "..", &st));
    raw("stat /etc", __wasi_path_filestat_get(sandbox, 0, "/etc", &st));
    raw("stat link_dir_up/secret.txt", __wasi_path_filestat_get(sandbox, 0, "link_dir_up/secret.txt", &st));
    raw("stat link_chain1 follow", __wasi_path_filestat_get(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW,
                                                            "link_chain1", &st));
    raw("stat link_loop_a follow", __wasi_path_filestat_get(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW,
                                                            "link_loop_a", &st));
    raw("mkdir ../outside/made", __wasi_path_create_directory(sandbox, "../outside/made"));
    raw("mkdir link_dir_up/made", __wasi_path_create_directory(sandbox, "link_dir_up/made"));
    raw("mkdir /tmp/x", __wasi_path_create_directory(sandbox, "/tmp/x"));
    raw("unlink ../outside/secret.txt", __wasi_path_unlink_file(sandbox, "../outside/secret.txt"));
    raw("unlink link_dir_up/secret.txt", __wasi_path_unlink_file(sandbox, "link_dir_up/secret.txt"));
    raw("rmdir ../outside", __wasi_path_remove_directory(sandbox, "../outside"));
    raw("rmdir link_dir_up", __wasi_path_remove_directory(sandbox, "link_dir_up"));
    raw("rename out", __wasi_path_rename(sandbox, "seed.txt", sandbox, "../outside/stolen.txt"));
    raw("rename in", __wasi_path_rename(sandbox, "../outside/secret.txt", sandbox, "stolen.txt"));
    raw("rename through link_dir_up", __wasi_path_rename(sandbox, "link_dir_up/secret.txt",
                                                         sandbox, "stolen.txt"));
    raw("rename the link itself", __wasi_path_rename(sandbox, "link_up", sandbox, "link_up_moved"));
    raw("rename it back", __wasi_path_rename(sandbox, "link_up_moved", sandbox, "link_up"));
    raw("link out", __wasi_path_link(sandbox, 0, "seed.txt", sandbox, "../outside/hard.txt"));
    raw("link through link_up", __wasi_path_link(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW,
                                                 "link_up", sandbox, "hard.txt"));
    raw("symlink out", __wasi_path_symlink("x", sandbox, "../outside/evil"));
    raw("symlink absolute target", __wasi_path_symlink("/etc/passwd", sandbox, "evil_abs"));
    raw("symlink upward target", __wasi_path_symlink("../../etc/passwd", sandbox, "evil_up"));
    uint8_t target[64];
    __wasi_size_t used;
    raw("readlink link_up", __wasi_path_readlink(sandbox, "link_up", target, sizeof target, &used));
    printf("link_up -> %.*s\n", (int)used, target);
    raw("readlink ../outside", __wasi_path_readlink(sandbox, "../x", target, sizeof target, &used));
    raw("readlink link_dir_up/x", __wasi_path_readlink(sandbox, "link_dir_up/x", target,
                                                       sizeof target, &used));
    raw("set_times ../outside/secret.txt",
        __wasi_path_filestat_set_times(sandbox, 0, "../outside/secret.txt", 0, 0,
                                       __WASI_FSTFLAGS_MTIM_NOW));
    raw("set_times link_up follow",
        __wasi_path_filestat_set_times(sandbox, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link_up", 0, 0,
                                       __WASI_FSTFLAGS_MTIM_NOW));
    raw("readdir data/..", open_at(data, 0, "..", __WASI_OFLAGS_DIRECTORY, 0, 0, &fd));
    libc("libc open /etc/passwd", open("/etc/passwd", O_RDONLY));
    libc("libc open ../outside/secret.txt", open("/sandbox/../outside/secret.txt", O_RDONLY));
}

static void polling(void) {
    printf("== poll_oneoff\n");
    __wasi_subscription_t subs[3];
    __wasi_event_t events[3];
    __wasi_size_t n = 0;
    memset(subs, 0, sizeof subs);
    memset(events, 0, sizeof events);
    raw("no subscriptions", __wasi_poll_oneoff(subs, events, 0, &n));

    subs[0].userdata = 11;
    subs[0].u.tag = __WASI_EVENTTYPE_CLOCK;
    subs[0].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    subs[0].u.u.clock.timeout = 2000000;
    raw("one relative clock", __wasi_poll_oneoff(subs, events, 1, &n));
    printf("events %lu: userdata %llu error %u type %u\n", n, (unsigned long long)events[0].userdata,
           events[0].error, events[0].type);

    subs[1] = subs[0];
    subs[1].userdata = 22;
    subs[1].u.u.clock.timeout = 5000000000ull;
    subs[0].u.u.clock.timeout = 1000000;
    raw("two clocks", __wasi_poll_oneoff(subs, events, 2, &n));
    printf("events %lu: userdata %llu error %u type %u\n", n, (unsigned long long)events[0].userdata,
           events[0].error, events[0].type);

    __wasi_timestamp_t now;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &now);
    subs[0].u.u.clock.timeout = now + 1000000;
    subs[0].u.u.clock.flags = __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME;
    raw("absolute monotonic clock", __wasi_poll_oneoff(subs, events, 2, &n));
    printf("events %lu: userdata %llu\n", n, (unsigned long long)events[0].userdata);
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &now);
    subs[0].u.u.clock.timeout = now - 1000000; /* in the past */
    raw("past absolute clock", __wasi_poll_oneoff(subs, events, 1, &n));
    printf("events %lu: userdata %llu\n", n, (unsigned long long)events[0].userdata);
    (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &now);
    subs[0].u.u.clock.id = __WASI_CLOCKID_REALTIME;
    subs[0].u.u.clock.timeout = now + 1000000;
    raw("absolute realtime clock", __wasi_poll_oneoff(subs, events, 2, &n));
    printf("events %lu: userdata %llu\n", n, (unsigned long long)events[0].userdata);
    subs[0].u.u.clock.id = __WASI_CLOCKID_PROCESS_CPUTIME_ID;
    raw("cpu-time clock", __wasi_poll_oneoff(subs, events, 2, &n));
    subs[0].u.u.clock.id = 9;
    raw("invalid clock", __wasi_poll_oneoff(subs, events, 2, &n));

    /* stdin has data (the harness writes it), so it is ready before the 5 s clock. */
    subs[0].userdata = 33;
    subs[0].u.tag = __WASI_EVENTTYPE_FD_READ;
    subs[0].u.u.fd_read.file_descriptor = 0;
    raw("stdin and a clock", __wasi_poll_oneoff(subs, events, 2, &n));
    printf("events %lu: userdata %llu error %u type %u\n", n, (unsigned long long)events[0].userdata,
           events[0].error, events[0].type);
    char line[64] = {0};
    ssize_t got = read(0, line, sizeof line - 1);
    printf("stdin: %zd bytes: %s", got, line);

    subs[0].userdata = 44;
    subs[0].u.tag = __WASI_EVENTTYPE_FD_WRITE;
    subs[0].u.u.fd_write.file_descriptor = 1;
    raw("stdout and a clock", __wasi_poll_oneoff(subs, events, 2, &n));
    printf("events %lu: userdata %llu error %u type %u\n", n, (unsigned long long)events[0].userdata,
           events[0].error, events[0].type);
    subs[0].u.u.fd_write.file_descriptor = 55;
    raw("closed fd and a clock", __wasi_poll_oneoff(subs, events, 2, &n));
    subs[0].u.tag = 7;
    raw("invalid event type", __wasi_poll_oneoff(subs, events, 2, &n));
    libc("nanosleep", nanosleep(&(struct timespec){0, 1000000}, NULL));
}

static void clocks_and_more(void) {
    printf("== clocks, random, yield\n");
    __wasi_timestamp_t t1, t2, res;
    for (__wasi_clockid_t id = 0; id < 4; id++) {
        __wasi_errno_t error = __wasi_clock_res_get(id, &res);
        printf("clock_res_get %u: %u", id, error);
        if (!error)
            printf(" positive %d", res > 0);
        error = __wasi_clock_time_get(id, 1, &t1);
        printf(" clock_time_get: %u\n", error);
    }
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t1);
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t2);
    printf("monotonic nondecreasing %d\n", t2 >= t1);
    (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &t1);
    printf("realtime after 2020 %d\n", t1 > 1577836800ull * 1000000000ull);
    uint8_t a[32] = {0}, b[32] = {0};
    raw("random_get", __wasi_random_get(a, sizeof a));
    raw("random_get", __wasi_random_get(b, sizeof b));
    printf("random differs %d\n", memcmp(a, b, sizeof a) != 0);
    raw("random_get empty", __wasi_random_get(a, 0));
    raw("sched_yield", __wasi_sched_yield());
    printf("sched_yield libc %d\n", sched_yield());
    __wasi_fd_t fd;
    raw("sock_accept", __wasi_sock_accept(1, 0, &fd));
    raw("sock_accept closed fd", __wasi_sock_accept(66, 0, &fd));
    raw("sock_shutdown", __wasi_sock_shutdown(sandbox, __WASI_SDFLAGS_RD));
}

static void stdio_edges(void) {
    printf("== stdio\n");
    __wasi_filesize_t offset;
    raw("fd_seek stdout", __wasi_fd_seek(1, 0, __WASI_WHENCE_CUR, &offset));
    raw("fd_tell stdout", __wasi_fd_tell(1, &offset));
    __wasi_ciovec_t ciov = {(const uint8_t *)"x", 1};
    __wasi_size_t n;
    raw("fd_pwrite stdout", __wasi_fd_pwrite(1, &ciov, 1, 0, &n));
    uint8_t buf[4];
    __wasi_iovec_t iov = {buf, 4};
    raw("fd_pread stdin", __wasi_fd_pread(0, &iov, 1, 0, &n));
    raw("fd_read stdout", __wasi_fd_read(1, &iov, 1, &n));
    raw("fd_write stdin", __wasi_fd_write(0, &ciov, 1, &n));
    raw("fd_sync stdout", __wasi_fd_sync(1));
    raw("fd_filestat_set_size stdout", __wasi_fd_filestat_set_size(1, 0));
    raw("fd_advise stdout", __wasi_fd_advise(1, 0, 0, __WASI_ADVICE_NORMAL));
    raw("fd_fdstat_set_flags stdout", __wasi_fd_fdstat_set_flags(1, __WASI_FDFLAGS_APPEND));
    raw("fd_filestat_set_times stdout", __wasi_fd_filestat_set_times(1, 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
    raw("fd_write zero iovecs", __wasi_fd_write(1, &ciov, 0, &n));
    printf("wrote %lu\n", n);
}

static void closing_preopens(void) {
    printf("== closing a preopen\n");
    raw("fd_close data", __wasi_fd_close(data));
    __wasi_fd_t fd;
    raw("path_open on it", open_at(data, 0, "x", 0, 0, 0, &fd));
    __wasi_prestat_t prestat;
    raw("prestat of it", __wasi_fd_prestat_get(data, &prestat));
    int f = open("/sandbox/seed.txt", O_RDONLY);
    printf("next fd %d\n", f);
}

int main(void) {
    preopens();
    fdstats();
    files();
    renumbering();
    stats();
    directories();
    readdir_raw();
    odd_paths();
    listing("/sandbox");
    listing("/sandbox/sub");
    listing("data");
    escapes();
    polling();
    clocks_and_more();
    stdio_edges();
    listing("/sandbox");
    closing_preopens();
    fflush(stdout);
    return 3;
}
