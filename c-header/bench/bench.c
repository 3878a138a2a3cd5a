#define _POSIX_C_SOURCE 199309L
/* ns per palisade_decide from C, against a pinned snapshot of the shop example.
 * Run from the repository root: see scripts/c-bench.sh. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "palisade.h"

static palisade_str str(const char *s) {
    palisade_str r = {s, s ? strlen(s) : 0};
    return r;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(void) {
    palisade_engine *engine = palisade_engine_new(NULL, NULL);
    const char *paths[] = {"examples/shop"};
    if (palisade_engine_load_paths(engine, paths, 1, NULL) != PALISADE_STATUS_OK) {
        return 1;
    }
    palisade_snapshot *snap = palisade_engine_snapshot(engine);
    palisade_request req;
    memset(&req, 0, sizeof req);
    req.protocol = 6;
    req.src_ip.family = 4;
    memcpy(req.src_ip.addr, (unsigned char[]){10, 1, 0, 5}, 4);
    req.src_port = -1;
    req.src_principal = str("spiffe://cluster.local/ns/shop/sa/frontend");
    req.dst_ip.family = 4;
    memcpy(req.dst_ip.addr, (unsigned char[]){10, 1, 0, 9}, 4);
    req.dst_port = 8080;
    req.icmp_type = -1;
    req.icmp_code = -1;
    const char *names[] = {"l4_allow", "http_allow"};
    for (int k = 0; k < 2; k++) {
        if (k == 1) {
            req.has_http = true;
            req.method = str("GET");
            req.path = str("/api/cart/42");
        }
        palisade_decision d;
        long n = 5000000;
        unsigned long sink = 0;
        for (long i = 0; i < n / 10; i++) { /* warm-up */
            palisade_decide(snap, &req, &d);
        }
        double best = 1e18;
        for (int round = 0; round < 5; round++) {
            double t0 = now();
            for (long i = 0; i < n; i++) {
                palisade_decide(snap, &req, &d);
                sink += d.action;
            }
            double ns = (now() - t0) / (double)n;
            if (ns < best) {
                best = ns;
            }
        }
        printf("shop/%s via C ABI: %.1f ns/decision (best of 5 x %ld; %s)\n", names[k], best, n,
               sink ? "allow" : "deny");
    }
    palisade_snapshot_release(snap);
    palisade_engine_free(engine);
    return 0;
}
