/* Tests of the C ABI: load errors, allow, deny, the stolen certificate, explain, bad input,
 * and concurrent decisions from several threads while another thread reloads.
 * Run from the repository root (it reads examples/shop). Ends with "N passed, M failed". */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palisade.h"

static int passed = 0, failed = 0;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            passed++;                                      \
        } else {                                           \
            failed++;                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, "\n");                         \
        }                                                  \
    } while (0)

static palisade_str str(const char *s) {
    palisade_str r = {s, s ? strlen(s) : 0};
    return r;
}

static palisade_ip ip4(unsigned a, unsigned b, unsigned c, unsigned d) {
    palisade_ip ip;
    memset(&ip, 0, sizeof ip);
    ip.family = 4;
    ip.addr[0] = (uint8_t)a;
    ip.addr[1] = (uint8_t)b;
    ip.addr[2] = (uint8_t)c;
    ip.addr[3] = (uint8_t)d;
    return ip;
}

static palisade_request tcp(palisade_ip src, const char *principal, palisade_ip dst, int port) {
    palisade_request r;
    memset(&r, 0, sizeof r);
    r.direction = PALISADE_DIRECTION_BOTH;
    r.protocol = 6;
    r.src_ip = src;
    r.src_port = -1;
    r.src_principal = str(principal);
    r.dst_ip = dst;
    r.dst_port = port;
    r.icmp_type = -1;
    r.icmp_code = -1;
    return r;
}

static int name_is(const char *p, size_t len, const char *want) {
    return p != NULL && len == strlen(want) && memcmp(p, want, len) == 0;
}

/* Two bundles that differ in one verdict, for the reload test. */
static const char *ALLOW_BUNDLE =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n}\nstatus: {podIP: 10.0.0.1}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: n}\nstatus: {podIP: 10.0.0.2}\n---\n"
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\n"
    "spec: {ingress: [{action: Allow, protocol: TCP}]}\n";
static const char *DENY_BUNDLE =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n}\nstatus: {podIP: 10.0.0.1}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: n}\nstatus: {podIP: 10.0.0.2}\n---\n"
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\n"
    "spec: {ingress: [{action: Deny, protocol: TCP}]}\n";

struct shared {
    palisade_engine *engine;
    volatile int stop;
    long decisions;
    long wrong;
    long progress; /* decisions so far, read while the test runs */
};

static void *reader(void *arg) {
    struct shared *s = arg;
    palisade_request req = tcp(ip4(10, 0, 0, 1), NULL, ip4(10, 0, 0, 2), 80);
    long n = 0, wrong = 0;
    while (!s->stop) {
        palisade_snapshot *snap = palisade_engine_snapshot(s->engine);
        palisade_decision d;
        palisade_status st = palisade_decide(snap, &req, &d);
        /* Odd generations load ALLOW_BUNDLE, even ones DENY_BUNDLE. */
        uint64_t g = palisade_snapshot_generation(snap);
        palisade_action want = (g % 2 == 1) ? PALISADE_ACTION_ALLOW : PALISADE_ACTION_DENY;
        size_t len = 0;
        const char *policy = palisade_decision_policy(snap, &d, &len);
        if (st != PALISADE_STATUS_OK || d.generation != g || d.action != want || !name_is(policy, len, "gnp:p")) {
            wrong++;
        }
        palisade_snapshot_release(snap);
        n++;
        __atomic_add_fetch(&s->progress, 1, __ATOMIC_RELAXED);
    }
    __atomic_add_fetch(&s->decisions, n, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&s->wrong, wrong, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    CHECK(palisade_version() != NULL && strlen(palisade_version()) > 0, "version");

    palisade_error *err = NULL;
    palisade_engine *engine = palisade_engine_new(NULL, &err);
    CHECK(engine != NULL && err == NULL, "engine_new");

    /* Nothing loaded: deny, no_bundle. */
    palisade_request req = tcp(ip4(10, 1, 0, 5), NULL, ip4(10, 1, 0, 9), 8080);
    palisade_decision d;
    CHECK(palisade_engine_decide(engine, &req, &d) == PALISADE_STATUS_NO_BUNDLE, "no bundle status");
    CHECK(d.action == PALISADE_ACTION_DENY && d.reason == PALISADE_REASON_NO_BUNDLE, "no bundle deny");
    CHECK(palisade_engine_snapshot(engine) == NULL, "no snapshot yet");

    /* apply: a change set as JSON text, all-or-nothing unless lenient, with a report. */
    {
        palisade_engine *e2 = palisade_engine_new(NULL, &err);
        CHECK(e2 != NULL && palisade_engine_load(e2, DENY_BUNDLE, strlen(DENY_BUNDLE), &err) == PALISADE_STATUS_OK,
              "apply: load");
        palisade_request r2 = tcp(ip4(10, 0, 0, 1), NULL, ip4(10, 0, 0, 2), 80);
        CHECK(palisade_engine_decide(e2, &r2, &d) == PALISADE_STATUS_OK && d.action == PALISADE_ACTION_DENY,
              "apply: denied before");
        const char *del = "[{\"op\": \"delete\", \"apiVersion\": \"projectcalico.org/v3\", "
                          "\"kind\": \"GlobalNetworkPolicy\", \"name\": \"p\"}]";
        char *rep = NULL;
        CHECK(palisade_engine_apply_json(e2, str(del), false, &rep, &err) == PALISADE_STATUS_OK && rep != NULL &&
                  strstr(rep, "\"deleted\":1") != NULL && strstr(rep, "\"generation\":2") != NULL,
              "apply: report %s", rep ? rep : "(none)");
        palisade_string_free(rep);
        CHECK(palisade_engine_decide(e2, &r2, &d) == PALISADE_STATUS_OK && d.action == PALISADE_ACTION_ALLOW &&
                  d.reason == PALISADE_REASON_NO_POLICY && d.generation == 2,
              "apply: the profile allows after the delete");
        const char *badpod = "[{\"op\": \"upsert\", \"text\": \"apiVersion: v1\\nkind: Pod\\n"
                             "metadata: {name: c, namespace: n}\\nstatus: {podIP: x}\\n\"}]";
        rep = NULL;
        CHECK(palisade_engine_apply_json(e2, str(badpod), false, &rep, &err) == PALISADE_STATUS_BUNDLE && rep == NULL &&
                  err != NULL,
              "apply: a bad pod refuses the set");
        const char *field = NULL;
        palisade_error_location(err, NULL, NULL, &field, NULL);
        CHECK(field != NULL && strncmp(field, "status.podIP", 12) == 0, "apply: located at %s", field ? field : "-");
        palisade_error_free(err);
        err = NULL;
        CHECK(palisade_engine_apply_json(e2, str(badpod), true, &rep, &err) == PALISADE_STATUS_OK && rep != NULL &&
                  strstr(rep, "\"generation\":3") != NULL && strstr(rep, "status.podIP") != NULL,
              "apply: lenient leaves it out and reports it: %s", rep ? rep : "(none)");
        palisade_string_free(rep);
        CHECK(palisade_engine_apply_json(e2, str("{\"op\": 1}"), false, NULL, &err) == PALISADE_STATUS_BUNDLE, "apply: not a list");
        palisade_error_free(err);
        err = NULL;
        CHECK(palisade_engine_apply_json(NULL, str(del), false, NULL, NULL) == PALISADE_STATUS_NULL_ARGUMENT, "apply: NULL");
        palisade_engine_free(e2);
    }

    /* A bad bundle: typed, located error. */
    const char *bad = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: \"((\"}\n";
    CHECK(palisade_engine_load(engine, bad, strlen(bad), &err) == PALISADE_STATUS_BUNDLE, "bad bundle status");
    CHECK(err != NULL && strstr(palisade_error_message(err), "spec.selector") != NULL, "error message: %s",
          err ? palisade_error_message(err) : "(none)");
    const char *file = NULL, *object = NULL, *field = NULL;
    int64_t doc = -2;
    palisade_error_location(err, &file, &object, &field, &doc);
    CHECK(object && strcmp(object, "GlobalNetworkPolicy p") == 0, "error object");
    CHECK(field && strcmp(field, "spec.selector") == 0 && doc == 0, "error field/document");
    CHECK(strcmp(palisade_error_kind(err), "invalid") == 0, "error kind %s", palisade_error_kind(err));
    palisade_error_free(err);
    err = NULL;

    /* Every error of a load at once: the count, and the report with one line each. */
    const char *two = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: a}\nspec: {selector: \"((\"}\n---\n"
                      "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicies\nmetadata: {name: b}\nspec: {}\n";
    CHECK(palisade_engine_load(engine, two, strlen(two), &err) == PALISADE_STATUS_BUNDLE, "two errors status");
    CHECK(palisade_error_count(err) == 2, "error count %zu", palisade_error_count(err));
    CHECK(strstr(palisade_error_report(err), "GlobalNetworkPolicy a") != NULL &&
              strstr(palisade_error_report(err), "did you mean GlobalNetworkPolicy") != NULL &&
              strchr(palisade_error_report(err), '\n') != NULL,
          "error report: %s", palisade_error_report(err));
    palisade_error_free(err);
    err = NULL;

    /* A configuration as text: every key, trust-domain aliases included. */
    palisade_engine *aliased = palisade_engine_new_from_config_text(str("trust_domain_aliases: [old.example]\n"), &err);
    CHECK(aliased != NULL && err == NULL, "engine from config text");
    palisade_engine_free(aliased);
    CHECK(palisade_engine_new_from_config_text(str("trust_domain_aliases: [Bad_Domain]\n"), &err) == NULL &&
              palisade_error_status(err) == PALISADE_STATUS_CONFIG,
          "bad config text refused");
    palisade_error_free(err);
    err = NULL;

    /* A policy store with a tier-scoped writer: writes outside its tiers are refused whole. */
    {
        palisade_str names[1] = {str("tiers.yaml")};
        palisade_str texts[1] = {str(
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n---\n"
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: app}\nspec: {order: 200}\n")};
        palisade_store *store = palisade_store_new(names, texts, 1, &err);
        CHECK(store != NULL && err == NULL, "store_new: %s", err ? palisade_error_message(err) : "");
        palisade_str tiers[1] = {str("app")};
        palisade_tier_writer *w = palisade_store_tier_writer(store, tiers, 1);
        CHECK(w != NULL, "tier writer");
        const char *own = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: app.open}\n"
                          "spec: {tier: app, selector: all(), ingress: [{action: Allow}]}\n";
        CHECK(palisade_tier_writer_put(w, str("app.yaml"), str(own), &err) == PALISADE_STATUS_OK, "own tier: %s",
              err ? palisade_error_message(err) : "");
        const char *other = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: security.open}\n"
                            "spec: {tier: security, selector: all(), ingress: [{action: Allow}]}\n";
        CHECK(palisade_tier_writer_put(w, str("sec.yaml"), str(other), &err) == PALISADE_STATUS_REFUSED &&
                  strstr(palisade_error_message(err), "security") != NULL,
              "other tier refused: %s", err ? palisade_error_message(err) : "(none)");
        palisade_error_free(err);
        err = NULL;
        palisade_snapshot *ss = palisade_store_snapshot(store);
        CHECK(ss != NULL && palisade_snapshot_generation(ss) == 2, "one accepted write, one refused: generation %llu",
              ss ? (unsigned long long)palisade_snapshot_generation(ss) : 0ULL);
        palisade_snapshot_release(ss);
        palisade_tier_writer_free(w);
        palisade_store_free(store);
    }

    /* Invalid UTF-8 and NULL arguments are errors, not crashes. */
    const char bad_utf8[] = {'a', (char)0xff, 'b'};
    CHECK(palisade_engine_load(engine, bad_utf8, sizeof bad_utf8, &err) == PALISADE_STATUS_INVALID_UTF8, "utf8 load");
    palisade_error_free(err);
    err = NULL;
    CHECK(palisade_engine_load(NULL, "x", 1, NULL) == PALISADE_STATUS_NULL_ARGUMENT, "null engine");
    CHECK(palisade_decide(NULL, &req, &d) == PALISADE_STATUS_NO_BUNDLE && d.action == PALISADE_ACTION_DENY, "null snapshot");
    CHECK(palisade_engine_decide(engine, NULL, &d) == PALISADE_STATUS_NULL_ARGUMENT && d.action == PALISADE_ACTION_DENY,
          "null request");

    /* The shop example. */
    const char *paths[] = {"examples/shop"};
    CHECK(palisade_engine_load_paths(engine, paths, 1, &err) == PALISADE_STATUS_OK, "load shop: %s",
          err ? palisade_error_message(err) : "");
    palisade_snapshot *snap = palisade_engine_snapshot(engine);
    CHECK(snap != NULL && palisade_snapshot_generation(snap) == 1, "pinned generation 1");
    char *skipped = palisade_snapshot_skipped_json(snap);
    CHECK(skipped != NULL && skipped[0] == '[', "skipped json: %s", skipped ? skipped : "(null)");
    palisade_string_free(skipped);

    /* Allow: frontend -> cart, GET /api/cart/42, frontend's certificate. */
    req = tcp(ip4(10, 1, 0, 5), "spiffe://cluster.local/ns/shop/sa/frontend", ip4(10, 1, 0, 9), 8080);
    palisade_header headers[1] = {{str("x-request-id"), str("42")}};
    req.has_http = true;
    req.method = str("GET");
    req.path = str("/api/cart/42");
    req.headers = headers;
    req.header_count = 1;
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_OK, "decide allow");
    CHECK(d.action == PALISADE_ACTION_ALLOW && d.reason == PALISADE_REASON_RULE && d.side == 1 && d.rule == 0, "allow");
    size_t len = 0;
    const char *tier = palisade_decision_tier(snap, &d, &len);
    CHECK(name_is(tier, len, "default"), "tier name");
    const char *policy = palisade_decision_policy(snap, &d, &len);
    CHECK(name_is(policy, len, "np:shop/cart-api"), "policy name");

    /* One header name twice (any case) is a duplicate key: a deny with an error status. */
    palisade_header twice[2] = {{str("x-evil"), str("1")}, {str("X-Evil"), str("2")}};
    req.headers = twice;
    req.header_count = 2;
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_INVALID_ARGUMENT && d.action == PALISADE_ACTION_DENY &&
              d.reason == PALISADE_REASON_INVALID_REQUEST,
          "duplicate header");
    req.headers = headers;
    req.header_count = 1;
    /* So is a claim given twice, at any depth. */
    req.claims_json = str("{\"org\": {\"role\": \"user\", \"role\": \"admin\"}}");
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_INVALID_ARGUMENT && d.action == PALISADE_ACTION_DENY,
          "duplicate claim");
    req.claims_json = str(NULL);
    /* An encoded separator in the path: decided, invalid_request. */
    req.path = str("/api%2F..%2Fcart/42");
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_OK && d.reason == PALISADE_REASON_INVALID_REQUEST,
          "encoded slash");
    req.path = str("/api/cart/42");

    /* Without HTTP attributes: allowed with l7_pending. */
    req.has_http = false;
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_OK && d.l7_pending, "l7_pending");

    /* Deny by the security tier: the quarantined pod. */
    req = tcp(ip4(10, 1, 0, 66), NULL, ip4(10, 1, 0, 9), 8080);
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_OK, "decide deny");
    policy = palisade_decision_policy(snap, &d, &len);
    CHECK(d.action == PALISADE_ACTION_DENY && d.reason == PALISADE_REASON_RULE && name_is(policy, len, "gnp:block-quarantine"),
          "quarantine deny");

    /* The stolen certificate: payments' identity from the frontend's IP. */
    req = tcp(ip4(10, 1, 0, 5), "spiffe://cluster.local/ns/payments/sa/payments", ip4(10, 2, 0, 7), 8443);
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_OK, "decide stolen");
    CHECK(d.action == PALISADE_ACTION_DENY && d.reason == PALISADE_REASON_IDENTITY_MISMATCH && d.peer == 1, "stolen cert");
    CHECK(palisade_decision_policy(snap, &d, &len) == NULL, "no policy for identity reasons");

    /* Explain: owned JSON. */
    char *json = NULL;
    CHECK(palisade_explain_json(snap, &req, &json, &err) == PALISADE_STATUS_OK && json != NULL, "explain");
    CHECK(json && strstr(json, "\"reason\":\"identity_mismatch\"") != NULL, "explain json: %s", json ? json : "");
    palisade_string_free(json);

    /* Bad request fields: a deny with an error status. */
    const char bad_principal[] = {'s', 'p', (char)0xc3};
    req.src_principal.ptr = bad_principal;
    req.src_principal.len = sizeof bad_principal;
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_INVALID_UTF8 && d.action == PALISADE_ACTION_DENY, "bad utf8");
    req = tcp(ip4(10, 1, 0, 5), NULL, ip4(10, 1, 0, 9), 8080);
    req.dst_ip.family = 5;
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_INVALID_ARGUMENT && d.action == PALISADE_ACTION_DENY, "family");
    req = tcp(ip4(10, 1, 0, 5), NULL, ip4(10, 1, 0, 9), 70000);
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_INVALID_ARGUMENT && d.action == PALISADE_ACTION_DENY, "port");
    req = tcp(ip4(10, 1, 0, 5), NULL, ip4(10, 1, 0, 9), -1);
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_OK && d.reason == PALISADE_REASON_INVALID_REQUEST,
          "missing TCP port is an invalid request");
    req = tcp(ip4(10, 1, 0, 5), NULL, ip4(10, 1, 0, 9), 8080);
    req.direction = 9;
    CHECK(palisade_decide(snap, &req, &d) == PALISADE_STATUS_INVALID_ARGUMENT && d.action == PALISADE_ACTION_DENY, "direction");

    /* A failed load leaves the pinned and the current snapshot serving. */
    CHECK(palisade_engine_load(engine, bad, strlen(bad), NULL) == PALISADE_STATUS_BUNDLE, "bad reload");
    palisade_snapshot *again = palisade_engine_snapshot(engine);
    CHECK(palisade_snapshot_generation(again) == 1, "still generation 1");
    palisade_snapshot_release(again);
    palisade_snapshot_release(snap);

    /* Flow logs: decisions through a flow logger, drained as Calico JSON lines; a full
     * queue still decides, drops the record and counts it. */
    {
        palisade_flowlog *fl = palisade_flowlog_new(engine, 2, PALISADE_FLOWLOG_AGGREGATION_NONE, &err);
        CHECK(fl != NULL && err == NULL, "flowlog_new");
        palisade_request cart = tcp(ip4(10, 1, 0, 5), "spiffe://cluster.local/ns/shop/sa/frontend", ip4(10, 1, 0, 9), 8080);
        cart.has_http = true;
        cart.method = str("GET");
        cart.path = str("/api/cart/42");
        palisade_request quarantined = tcp(ip4(10, 1, 0, 66), NULL, ip4(10, 1, 0, 9), 8080);
        CHECK(palisade_flowlog_decide(fl, &cart, &d) == PALISADE_STATUS_OK && d.action == PALISADE_ACTION_ALLOW &&
                  d.reason == PALISADE_REASON_RULE && d.rule == 0 && d.generation == 1,
              "flowlog decide allow");
        CHECK(palisade_flowlog_decide(fl, &quarantined, &d) == PALISADE_STATUS_OK && d.action == PALISADE_ACTION_DENY,
              "flowlog decide deny");
        CHECK(palisade_flowlog_dropped(fl) == 0, "nothing dropped yet");
        /* The queue holds 2: the third decision is decided and counted as dropped. */
        CHECK(palisade_flowlog_decide(fl, &cart, &d) == PALISADE_STATUS_OK && d.action == PALISADE_ACTION_ALLOW,
              "full queue still decides");
        CHECK(palisade_flowlog_dropped(fl) == 1, "dropped %llu", (unsigned long long)palisade_flowlog_dropped(fl));
        /* A request that does not translate: a deny with an error status, not recorded. */
        palisade_request badfam = cart;
        badfam.dst_ip.family = 9;
        CHECK(palisade_flowlog_decide(fl, &badfam, &d) == PALISADE_STATUS_INVALID_ARGUMENT &&
                  d.action == PALISADE_ACTION_DENY,
              "flowlog bad family");
        char *lines = palisade_flowlog_drain_json(fl);
        CHECK(lines != NULL, "drain_json");
        if (lines) {
            int n = 0;
            for (const char *c = lines; *c; c++) n += *c == '\n';
            CHECK(n >= 2 && lines[strlen(lines) - 1] == '\n', "%d lines: %s", n, lines);
            CHECK(strstr(lines, "\"reporter\":\"dst\"") && strstr(lines, "\"dest_name_aggr\":\"cart-5c4b\"") &&
                      strstr(lines, "|shop/default.cart-api|allow|0\"") && strstr(lines, "\"http_requests_allowed_in\":1") &&
                      strstr(lines, "\"action\":\"deny\"") && strstr(lines, "security.block-quarantine|deny|") &&
                      strstr(lines, "\"decision_id\":\"") && strstr(lines, "\"http_path\":\"/api/cart/42\""),
                  "flow records: %s", lines);
            palisade_string_free(lines);
        }
        lines = palisade_flowlog_drain_json(fl);
        CHECK(lines != NULL && lines[0] == '\0', "second drain empty");
        palisade_string_free(lines);
        CHECK(palisade_flowlog_dropped(fl) == 1, "dropped is never reset");
        palisade_flowlog_free(fl);

        /* Aggregation at level 1: source ports aggregated away, three flows in one record. */
        fl = palisade_flowlog_new(engine, 0, 1, &err);
        CHECK(fl != NULL && err == NULL, "flowlog_new level 1");
        for (int port = 40001; port <= 40003; port++) {
            cart.src_port = port;
            CHECK(palisade_flowlog_decide(fl, &cart, &d) == PALISADE_STATUS_OK, "aggregated decide");
        }
        lines = palisade_flowlog_drain_json(fl);
        CHECK(lines && strstr(lines, "\"reporter\":\"dst\"") && strstr(lines, "\"source_port\":null") &&
                  strstr(lines, "\"num_flows\":3") && !strstr(lines, "\"decision_id\""),
              "aggregated records: %s", lines ? lines : "(null)");
        palisade_string_free(lines);
        palisade_flowlog_free(fl);

        /* Bad arguments. */
        CHECK(palisade_flowlog_new(engine, 0, 4, &err) == NULL && err != NULL &&
                  palisade_error_status(err) == PALISADE_STATUS_INVALID_ARGUMENT,
              "bad aggregation level");
        palisade_error_free(err);
        err = NULL;
        CHECK(palisade_flowlog_new(NULL, 0, PALISADE_FLOWLOG_AGGREGATION_DEFAULT, &err) == NULL && err != NULL &&
                  palisade_error_status(err) == PALISADE_STATUS_NULL_ARGUMENT,
              "flowlog of a NULL engine");
        palisade_error_free(err);
        err = NULL;
        d.action = PALISADE_ACTION_ALLOW;
        CHECK(palisade_flowlog_decide(NULL, &cart, &d) == PALISADE_STATUS_NULL_ARGUMENT && d.action == PALISADE_ACTION_DENY,
              "flowlog decide NULL");
        CHECK(palisade_flowlog_drain_json(NULL) == NULL && palisade_flowlog_dropped(NULL) == 0, "NULL flowlog");
        palisade_flowlog_free(NULL);

        /* Nothing loaded: a no_bundle deny, recorded with its reason. The flow logger keeps
         * its engine alive after palisade_engine_free. */
        palisade_engine *empty = palisade_engine_new(NULL, NULL);
        fl = palisade_flowlog_new(empty, 4, PALISADE_FLOWLOG_AGGREGATION_DEFAULT, NULL);
        palisade_engine_free(empty);
        CHECK(fl != NULL && palisade_flowlog_decide(fl, &cart, &d) == PALISADE_STATUS_NO_BUNDLE &&
                  d.action == PALISADE_ACTION_DENY && d.reason == PALISADE_REASON_NO_BUNDLE,
              "flowlog no bundle");
        lines = palisade_flowlog_drain_json(fl);
        CHECK(lines && strstr(lines, "\"reason\":\"no_bundle\""), "no_bundle record: %s", lines ? lines : "(null)");
        palisade_string_free(lines);
        palisade_flowlog_free(fl);
    }
    palisade_engine_free(engine);

    /* Concurrent decisions while another thread reloads. */
    struct shared s = {0};
    palisade_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.trust_domain = str("cluster.local");
    s.engine = palisade_engine_new(&cfg, NULL);
    CHECK(palisade_engine_load(s.engine, ALLOW_BUNDLE, strlen(ALLOW_BUNDLE), NULL) == PALISADE_STATUS_OK, "first load");
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&threads[i], NULL, reader, &s);
    }
    int reloads = 0;
    /* Reload 200 times, and keep reloading until the readers have decided a fair amount
     * (under valgrind threads are serialised and may start late). */
    for (int i = 0; i < 200 || (__atomic_load_n(&s.progress, __ATOMIC_RELAXED) < 2000 && i < 100000); i++) {
        const char *b = (i % 2 == 0) ? DENY_BUNDLE : ALLOW_BUNDLE;
        if (palisade_engine_load(s.engine, b, strlen(b), NULL) == PALISADE_STATUS_OK) {
            reloads++;
        }
        if (i >= 200) {
            sched_yield();
        }
    }
    s.stop = 1;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
    }
    CHECK(reloads >= 200, "reloads %d", reloads);
    CHECK(s.decisions > 0 && s.wrong == 0, "%ld decisions, %ld wrong", s.decisions, s.wrong);
    palisade_engine_free(s.engine);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
