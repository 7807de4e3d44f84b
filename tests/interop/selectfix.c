/*
 * selectfix.c -- LD_PRELOAD shim that lets Debian's slirp 1.0.17 run on 64-bit Linux.
 *
 * slirp's main loop passes select() a timeout whose tv_usec is (unsigned)-1 when
 * nothing is queued; the kernel rejects that with EINVAL and slirp exits with
 * status 1 right after its banner.  This wrapper replaces any out-of-range timeout
 * (tv_sec < 0, tv_usec < 0 or tv_usec >= 1000000) with 5 seconds and otherwise
 * forwards to the real select() unchanged.  See /work/shared/interop/README.md.
 *
 * Build: gcc -shared -fPIC -O2 -o selectfix.so selectfix.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/select.h>
#include <sys/time.h>

typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

int select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
           struct timeval *timeout)
{
    static select_fn real_select = NULL;
    if (real_select == NULL) {
        real_select = (select_fn)dlsym(RTLD_NEXT, "select");
    }
    if (timeout != NULL &&
        (timeout->tv_sec < 0 || timeout->tv_usec < 0 || timeout->tv_usec >= 1000000)) {
        timeout->tv_sec = 5;
        timeout->tv_usec = 0;
    }
    return real_select(nfds, readfds, writefds, exceptfds, timeout);
}
