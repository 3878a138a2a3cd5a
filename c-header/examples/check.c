/* check.c: ask Palisade whether a connection may proceed.
 *
 *   cargo build --release -p palisade-ffi
 *   gcc -std=c11 -Wall -Ic-header c-header/examples/check.c -Ltarget/release -lpalisade \
 *       -Wl,-rpath,"$PWD/target/release" -o check
 *   ./check examples/shop 10.1.0.5 spiffe://cluster.local/ns/payments/sa/payments 10.2.0.7 8443
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palisade.h"

static const char *REASONS[] = {"rule", "end_of_tier", "no_policy", "identity_mismatch",
                                "missing_peer_identity", "invalid_request", "no_bundle"};

static palisade_ip parse_ip(const char *text) {
    palisade_ip ip;
    memset(&ip, 0, sizeof ip);
    if (inet_pton(AF_INET, text, ip.addr) == 1) {
        ip.family = 4;
    } else if (inet_pton(AF_INET6, text, ip.addr) == 1) {
        ip.family = 6;
    }
    return ip;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s BUNDLE_DIR SRC_IP PRINCIPAL|- DST_IP DST_PORT\n", argv[0]);
        return 2;
    }
    palisade_error *err = NULL;
    palisade_engine *engine = palisade_engine_new(NULL, &err);
    const char *paths[] = {argv[1]};
    if (palisade_engine_load_paths(engine, paths, 1, &err) != PALISADE_STATUS_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], palisade_error_message(err));
        palisade_error_free(err);
        palisade_engine_free(engine);
        return 1;
    }
    palisade_request req;
    memset(&req, 0, sizeof req);
    req.direction = PALISADE_DIRECTION_BOTH;
    req.protocol = 6; /* TCP */
    req.src_ip = parse_ip(argv[2]);
    req.src_port = -1;
    if (strcmp(argv[3], "-") != 0) {
        req.src_principal.ptr = argv[3];
        req.src_principal.len = strlen(argv[3]);
    }
    req.dst_ip = parse_ip(argv[4]);
    req.dst_port = atoi(argv[5]);
    req.icmp_type = -1;
    req.icmp_code = -1;

    /* Pin the snapshot so that the names we read stay valid across reloads. */
    palisade_snapshot *snap = palisade_engine_snapshot(engine);
    palisade_decision d;
    palisade_status st = palisade_decide(snap, &req, &d);
    size_t len = 0;
    const char *policy = palisade_decision_policy(snap, &d, &len);
    printf("%s (%s)", d.action == PALISADE_ACTION_ALLOW ? "allow" : "deny", REASONS[d.reason]);
    if (policy != NULL) {
        printf(" by %.*s rule %d", (int)len, policy, d.rule);
    }
    printf("%s\n", st == PALISADE_STATUS_OK ? "" : " [request error]");
    palisade_snapshot_release(snap);
    palisade_engine_free(engine);
    return d.action == PALISADE_ACTION_ALLOW ? 0 : 3;
}
