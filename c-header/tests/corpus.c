/* tests/corpus/ through the C ABI: every case's bundle loaded with palisade_engine_load_paths,
 * each request line translated into a palisade_request and decided with palisade_decide (the
 * trace from palisade_explain_json), and the decision checked against the fields the expected
 * line names. A request the struct cannot express (a JSON-level error such as an unknown field
 * or a duplicate key, a text IP that does not parse) must be in tests/corpus/skip/c.txt with a
 * reason; the format: tests/corpus/README.md.
 * Usage: corpus [CORPUS_DIR] (default tests/corpus, run from the repository root).
 * Ends with "N decided, M skipped, K failed". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "palisade.h"

/* ---- a small JSON reader: enough for the corpus's files ---- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
    int type;
    int b;
    double num;
    char *str; /* J_STR: the decoded bytes, NUL-terminated */
    size_t n;  /* J_STR: length; J_ARR / J_OBJ: item count */
    struct jv *items;
    char **keys; /* J_OBJ */
    const char *start; /* the value's text in the source */
    size_t span;
} jv;

typedef struct {
    const char *p;
    const char *end;
    int dup; /* a duplicate key was seen */
    int err;
} jp;

static void ws(jp *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static void put_utf8(char **o, unsigned c) {
    if (c < 0x80) {
        *(*o)++ = (char)c;
    } else if (c < 0x800) {
        *(*o)++ = (char)(0xC0 | (c >> 6));
        *(*o)++ = (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        *(*o)++ = (char)(0xE0 | (c >> 12));
        *(*o)++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *(*o)++ = (char)(0x80 | (c & 0x3F));
    } else {
        *(*o)++ = (char)(0xF0 | (c >> 18));
        *(*o)++ = (char)(0x80 | ((c >> 12) & 0x3F));
        *(*o)++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *(*o)++ = (char)(0x80 | (c & 0x3F));
    }
}

static unsigned hex4(jp *s) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (s->p >= s->end) { s->err = 1; return 0; }
        char c = *s->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else s->err = 1;
    }
    return v;
}

static char *jstring(jp *s, size_t *len) {
    s->p++; /* the opening quote */
    char *out = malloc((size_t)(s->end - s->p) * 2 + 1), *o = out;
    while (s->p < s->end && *s->p != '"') {
        char c = *s->p++;
        if (c != '\\') { *o++ = c; continue; }
        if (s->p >= s->end) break;
        c = *s->p++;
        switch (c) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned u = hex4(s);
            if (u >= 0xD800 && u < 0xDC00 && s->p + 1 < s->end && s->p[0] == '\\' && s->p[1] == 'u') {
                s->p += 2;
                unsigned lo = hex4(s);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(&o, u);
            break;
        }
        default: *o++ = c;
        }
    }
    if (s->p >= s->end) s->err = 1;
    else s->p++;
    *o = 0;
    *len = (size_t)(o - out);
    return out;
}

static void jparse(jp *s, jv *v, int depth) {
    memset(v, 0, sizeof *v);
    ws(s);
    v->start = s->p;
    if (s->p >= s->end || depth > 64) { s->err = 1; return; }
    char c = *s->p;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v->type = obj ? J_OBJ : J_ARR;
        s->p++;
        size_t cap = 0;
        ws(s);
        if (s->p < s->end && *s->p == (obj ? '}' : ']')) {
            s->p++;
        } else {
            for (;;) {
                if (v->n == cap) {
                    cap = cap ? cap * 2 : 4;
                    v->items = realloc(v->items, cap * sizeof *v->items);
                    if (obj) v->keys = realloc(v->keys, cap * sizeof *v->keys);
                }
                if (obj) {
                    ws(s);
                    if (s->p >= s->end || *s->p != '"') { s->err = 1; return; }
                    size_t kl;
                    char *k = jstring(s, &kl);
                    for (size_t i = 0; i < v->n; i++)
                        if (strcmp(v->keys[i], k) == 0) s->dup = 1;
                    v->keys[v->n] = k;
                    ws(s);
                    if (s->p >= s->end || *s->p != ':') { s->err = 1; v->items[v->n++].type = J_NULL; return; }
                    s->p++;
                }
                jparse(s, &v->items[v->n++], depth + 1);
                if (s->err) return;
                ws(s);
                if (s->p < s->end && *s->p == ',') { s->p++; continue; }
                if (s->p < s->end && *s->p == (obj ? '}' : ']')) { s->p++; break; }
                s->err = 1;
                return;
            }
        }
    } else if (c == '"') {
        v->type = J_STR;
        v->str = jstring(s, &v->n);
    } else if (strncmp(s->p, "true", 4) == 0) {
        v->type = J_BOOL, v->b = 1, s->p += 4;
    } else if (strncmp(s->p, "false", 5) == 0) {
        v->type = J_BOOL, s->p += 5;
    } else if (strncmp(s->p, "null", 4) == 0) {
        v->type = J_NULL, s->p += 4;
    } else {
        char *e;
        v->type = J_NUM;
        v->num = strtod(s->p, &e);
        if (e == s->p) s->err = 1;
        s->p = e;
    }
    v->span = (size_t)(s->p - v->start);
}

static void jfree(jv *v) {
    for (size_t i = 0; i < v->n && (v->type == J_ARR || v->type == J_OBJ); i++) {
        jfree(&v->items[i]);
        if (v->type == J_OBJ) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

/* Parses text; returns 0 on a syntax error. *dup is set for a duplicate key. */
static int jread(const char *text, size_t len, jv *v, int *dup) {
    jp s = {text, text + len, 0, 0};
    jparse(&s, v, 0);
    ws(&s);
    if (s.p != s.end) s.err = 1;
    if (dup) *dup = s.dup;
    return !s.err;
}

static const jv *jget(const jv *o, const char *key) {
    if (o == NULL || o->type != J_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0) return &o->items[i];
    return NULL;
}

static int jeq(const jv *a, const jv *b) {
    int an = a == NULL || a->type == J_NULL, bn = b == NULL || b->type == J_NULL;
    if (an || bn) return an && bn;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case J_BOOL: return a->b == b->b;
    case J_NUM: return a->num == b->num;
    case J_STR: return a->n == b->n && memcmp(a->str, b->str, a->n) == 0;
    case J_ARR:
        if (a->n != b->n) return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!jeq(&a->items[i], &b->items[i])) return 0;
        return 1;
    default:
        if (a->n != b->n) return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!jeq(&a->items[i], jget(b, a->keys[i]))) return 0;
        return 1;
    }
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    if (len) *len = got;
    return buf;
}

/* The non-blank lines of a file, as pointers into *buf (NUL-terminated in place). */
static size_t lines_of(char *buf, char ***out) {
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strspn(line, " \t\r") == strlen(line)) continue;
        if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = line;
    }
    *out = v;
    return n;
}

/* ---- the request: JSON -> palisade_request ---- */

static palisade_str sv(const jv *v) {
    palisade_str r = {NULL, 0};
    if (v && v->type == J_STR) r.ptr = v->str, r.len = v->n;
    return r;
}

/* Returns NULL when `req` expresses the request, else why it cannot. */
static const char *only_keys(const jv *o, const char *const *keys) {
    if (o == NULL || o->type == J_NULL) return NULL;
    if (o->type != J_OBJ) return "a value that is not an object where the request has one";
    for (size_t i = 0; i < o->n; i++) {
        int known = 0;
        for (const char *const *k = keys; *k; k++) known |= strcmp(*k, o->keys[i]) == 0;
        if (!known) return "an unknown field";
    }
    return NULL;
}

static const char *to_ip(const jv *v, palisade_ip *ip) {
    memset(ip, 0, sizeof *ip);
    if (v == NULL || v->type == J_NULL) return NULL; /* absent: family 0 */
    if (v->type != J_STR) return "an IP that is not a string";
    if (inet_pton(AF_INET, v->str, ip->addr) == 1) ip->family = 4;
    else if (inet_pton(AF_INET6, v->str, ip->addr) == 1) ip->family = 6;
    else return "a text IP that does not parse (the struct holds address bytes)";
    return NULL;
}

static const char *to_port(const jv *v, int32_t *port) {
    *port = -1;
    if (v == NULL || v->type == J_NULL) return NULL;
    if (v->type != J_NUM) return "a port that is not a number";
    *port = (int32_t)v->num;
    return NULL;
}

typedef struct {
    palisade_request r;
    palisade_header headers[16];
    palisade_str audiences[8];
} built;

static const char *build(const jv *j, built *b) {
    static const char *const top[] = {"direction", "protocol", "source", "destination", "icmp", "http", "sni", "auth", NULL};
    static const char *const src_keys[] = {"ip", "port", "principal", "remote_ip", NULL};
    static const char *const dst_keys[] = {"ip", "port", "principal", NULL};
    static const char *const http_keys[] = {"method", "path", "host", "headers", NULL};
    static const char *const auth_keys[] = {"principal", "audiences", "presenter", "claims", NULL};
    static const char *const icmp_keys[] = {"type", "code", NULL};
    const char *why;
    palisade_request *r = &b->r;
    memset(b, 0, sizeof *b);
    if ((why = only_keys(j, top))) return why;
    const jv *src = jget(j, "source"), *dst = jget(j, "destination"), *http = jget(j, "http"), *auth = jget(j, "auth");
    const jv *icmp = jget(j, "icmp");
    if ((why = only_keys(src, src_keys)) || (why = only_keys(dst, dst_keys)) || (why = only_keys(http, http_keys)) ||
        (why = only_keys(auth, auth_keys)) || (why = only_keys(icmp, icmp_keys)))
        return why;
    const jv *dir = jget(j, "direction");
    r->direction = PALISADE_DIRECTION_BOTH;
    if (dir && dir->type == J_STR) {
        if (strcmp(dir->str, "ingress") == 0) r->direction = PALISADE_DIRECTION_INGRESS;
        else if (strcmp(dir->str, "egress") == 0) r->direction = PALISADE_DIRECTION_EGRESS;
        else if (strcmp(dir->str, "both") != 0) return "a direction the integer field has no value for";
    }
    const jv *proto = jget(j, "protocol");
    if (proto && proto->type == J_STR) {
        static const struct { const char *name; uint8_t n; } names[] = {
            {"TCP", 6}, {"UDP", 17}, {"ICMP", 1}, {"ICMPv6", 58}, {"SCTP", 132}, {"UDPLite", 136}};
        int found = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcasecmp(names[i].name, proto->str) == 0) r->protocol = names[i].n, found = 1;
        if (!found) return "a protocol name the translation does not know";
    } else if (proto && proto->type == J_NUM) {
        if (proto->num < 1 || proto->num > 255) return "a protocol number the uint8 field cannot hold (0 means TCP)";
        r->protocol = (uint8_t)proto->num;
    } else {
        r->protocol = 6;
    }
    if ((why = to_ip(jget(src, "ip"), &r->src_ip)) || (why = to_ip(jget(dst, "ip"), &r->dst_ip)) ||
        (why = to_ip(jget(src, "remote_ip"), &r->remote_ip)))
        return why;
    if ((why = to_port(jget(src, "port"), &r->src_port)) || (why = to_port(jget(dst, "port"), &r->dst_port))) return why;
    r->src_principal = sv(jget(src, "principal"));
    r->dst_principal = sv(jget(dst, "principal"));
    r->icmp_type = r->icmp_code = -1;
    if (icmp && icmp->type == J_OBJ) {
        const jv *t = jget(icmp, "type"), *c = jget(icmp, "code");
        if (t && t->type == J_NUM) r->icmp_type = (int16_t)t->num;
        if (c && c->type == J_NUM) r->icmp_code = (int16_t)c->num;
    }
    if (http && http->type == J_OBJ) {
        r->has_http = true;
        r->method = sv(jget(http, "method"));
        r->path = sv(jget(http, "path"));
        r->host = sv(jget(http, "host"));
        const jv *h = jget(http, "headers");
        if (h && h->type == J_OBJ) {
            if (h->n > 16) return "more headers than the test's array";
            for (size_t i = 0; i < h->n; i++) {
                b->headers[i].name.ptr = h->keys[i];
                b->headers[i].name.len = strlen(h->keys[i]);
                b->headers[i].value = sv(&h->items[i]);
            }
            r->headers = b->headers;
            r->header_count = h->n;
        }
    }
    r->sni = sv(jget(j, "sni"));
    if (auth && auth->type == J_OBJ) {
        r->auth_principal = sv(jget(auth, "principal"));
        r->auth_presenter = sv(jget(auth, "presenter"));
        const jv *aud = jget(auth, "audiences");
        if (aud && aud->type == J_ARR) {
            if (aud->n > 8) return "more audiences than the test's array";
            for (size_t i = 0; i < aud->n; i++) b->audiences[i] = sv(&aud->items[i]);
            r->audiences = b->audiences;
            r->audience_count = aud->n;
        }
        const jv *claims = jget(auth, "claims");
        if (claims && claims->type != J_NULL) {
            r->claims_json.ptr = claims->start;
            r->claims_json.len = claims->span;
        }
    }
    return NULL;
}

/* ---- the decision: palisade_decision -> JSON text ---- */

static const char *reason_name(palisade_reason r) {
    static const char *const names[] = {"rule", "end_of_tier", "no_policy", "identity_mismatch",
                                        "missing_peer_identity", "invalid_request", "no_bundle"};
    return (unsigned)r < 7 ? names[r] : "?";
}

static void jstr_or_null(char *out, size_t cap, const char *p, size_t len) {
    if (p == NULL) snprintf(out, cap, "null");
    else snprintf(out, cap, "\"%.*s\"", (int)len, p);
}

static char *decision_json(const palisade_snapshot *snap, const palisade_request *req) {
    palisade_decision d;
    palisade_decide(snap, req, &d);
    size_t tl = 0, pl = 0;
    const char *tier = palisade_decision_tier(snap, &d, &tl), *policy = palisade_decision_policy(snap, &d, &pl);
    char t[256], p[512], rule[32], trace[8192] = "{}";
    jstr_or_null(t, sizeof t, tier, tl);
    jstr_or_null(p, sizeof p, policy, pl);
    if (d.rule == -2) snprintf(rule, sizeof rule, "null");
    else snprintf(rule, sizeof rule, "%d", (int)d.rule);
    char *explained = NULL;
    palisade_error *err = NULL;
    if (palisade_explain_json(snap, req, &explained, &err) == PALISADE_STATUS_OK && explained) {
        jv e;
        if (jread(explained, strlen(explained), &e, NULL)) {
            const jv *tr = jget(&e, "trace");
            if (tr && tr->span < sizeof trace) snprintf(trace, sizeof trace, "%.*s", (int)tr->span, tr->start);
        }
        jfree(&e);
    }
    palisade_string_free(explained);
    palisade_error_free(err);
    static const char *const sides[] = {"null", "\"ingress\"", "\"egress\""};
    static const char *const peers[] = {"null", "\"source\"", "\"destination\""};
    static const char *const staged[] = {"null", "{\"action\": \"allow\"}", "{\"action\": \"deny\"}"};
    size_t cap = sizeof trace + 2048;
    char *out = malloc(cap);
    snprintf(out, cap,
             "{\"action\": \"%s\", \"reason\": \"%s\", \"side\": %s, \"tier\": %s, \"policy\": %s, \"rule\": %s, "
             "\"peer\": %s, \"l7_pending\": %s, \"staged\": %s, \"generation\": %llu, \"trace\": %s}",
             d.action == PALISADE_ACTION_ALLOW ? "allow" : "deny", reason_name(d.reason), d.side < 3 ? sides[d.side] : "\"?\"",
             t, p, rule, d.peer < 3 ? peers[d.peer] : "\"?\"", d.l7_pending ? "true" : "false",
             d.staged < 3 ? staged[d.staged] : "\"?\"", (unsigned long long)d.generation, trace);
    return out;
}

/* ---- the run ---- */

static int failed = 0, decided = 0, skipped = 0;

static void check(const char *what, const char *actual_text, const jv *expected) {
    jv actual;
    if (!jread(actual_text, strlen(actual_text), &actual, NULL)) {
        failed++;
        fprintf(stderr, "FAIL %s: unreadable decision %s\n", what, actual_text);
        jfree(&actual);
        return;
    }
    for (size_t i = 0; i < expected->n; i++) {
        const char *key = expected->keys[i];
        const jv *want = &expected->items[i];
        if (strcmp(key, "why") == 0) continue;
        if (strcmp(key, "trace") == 0) {
            const jv *tr = jget(&actual, "trace");
            for (size_t s = 0; s < want->n; s++) {
                if (!jeq(jget(tr, want->keys[s]), &want->items[s])) {
                    failed++;
                    fprintf(stderr, "FAIL %s: trace.%s, expected %.*s\n  decision: %s\n", what, want->keys[s],
                            (int)want->items[s].span, want->items[s].start, actual_text);
                }
            }
        } else if (!jeq(jget(&actual, key), want)) {
            failed++;
            fprintf(stderr, "FAIL %s: %s, expected %.*s\n  decision: %s\n", what, key, (int)want->span, want->start,
                    actual_text);
        }
    }
    jfree(&actual);
}

typedef struct {
    char *case_name;
    int line;
} skip_entry;

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    const char *corpus = argc > 1 ? argv[1] : "tests/corpus";
    char path[8192];

    /* The skip list: `case line reason`. */
    snprintf(path, sizeof path, "%s/skip/c.txt", corpus);
    char *skip_text = slurp(path, NULL);
    char **skip_lines = NULL;
    size_t nskip = skip_text ? lines_of(skip_text, &skip_lines) : 0;
    skip_entry *skips = calloc(nskip + 1, sizeof *skips);
    size_t ns = 0;
    int skip_used[1024] = {0};
    for (size_t i = 0; i < nskip; i++) {
        char *l = skip_lines[i] + strspn(skip_lines[i], " \t");
        if (*l == '#') continue;
        char name[256];
        int line, consumed = 0;
        if (sscanf(l, "%255s %d %n", name, &line, &consumed) < 2 || l[consumed] == 0) {
            fprintf(stderr, "FAIL skip/c.txt: `%s`: a skip needs `case line reason`\n", l);
            failed++;
            continue;
        }
        skips[ns].case_name = strdup(name);
        skips[ns++].line = line;
    }

    snprintf(path, sizeof path, "%s/cases", corpus);
    DIR *dir = opendir(path);
    if (!dir) {
        fprintf(stderr, "%s: cannot open\n", path);
        return 1;
    }
    char **names = NULL;
    size_t nnames = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (nnames + 1) * sizeof *names);
        names[nnames++] = strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, nnames, sizeof *names, cmp_names);

    for (size_t c = 0; c < nnames; c++) {
        char casedir[2048];
        snprintf(casedir, sizeof casedir, "%s/cases/%s", corpus, names[c]);
        snprintf(path, sizeof path, "%s/case.json", casedir);
        char *manifest_text = slurp(path, NULL);
        if (!manifest_text) continue; /* not a case directory */
        jv manifest;
        if (!jread(manifest_text, strlen(manifest_text), &manifest, NULL)) {
            fprintf(stderr, "FAIL %s: unreadable\n", path);
            failed++;
            jfree(&manifest);
            free(manifest_text);
            continue;
        }
        const jv *bundle = jget(&manifest, "bundle"), *reqs = jget(&manifest, "requests");
        size_t nb = bundle ? bundle->n : 0;
        char **paths = calloc(nb + 1, sizeof *paths);
        for (size_t i = 0; i < nb; i++) {
            paths[i] = malloc(strlen(casedir) + bundle->items[i].n + 2);
            sprintf(paths[i], "%s/%s", casedir, bundle->items[i].str);
        }
        palisade_error *err = NULL;
        palisade_engine *engine = palisade_engine_new(NULL, &err);
        if (palisade_engine_load_paths(engine, (const char *const *)paths, nb, &err) != PALISADE_STATUS_OK) {
            fprintf(stderr, "FAIL %s: the bundle does not load: %s\n", names[c], err ? palisade_error_message(err) : "?");
            failed++;
        } else {
            palisade_snapshot *snap = palisade_engine_snapshot(engine);
            snprintf(path, sizeof path, "%s/%s", casedir, reqs && reqs->type == J_STR ? reqs->str : "requests.jsonl");
            char *req_text = slurp(path, NULL);
            snprintf(path, sizeof path, "%s/expected.jsonl", casedir);
            char *exp_text = slurp(path, NULL);
            char **req_lines, **exp_lines;
            size_t nr = req_text ? lines_of(req_text, &req_lines) : 0;
            size_t ne = exp_text ? lines_of(exp_text, &exp_lines) : 0;
            if (nr != ne || nr == 0) {
                fprintf(stderr, "FAIL %s: %zu requests, %zu expected decisions\n", names[c], nr, ne);
                failed++;
            }
            for (size_t i = 0; i < nr && i < ne; i++) {
                char what[300];
                snprintf(what, sizeof what, "%s line %zu", names[c], i + 1);
                int skip = 0;
                for (size_t k = 0; k < ns; k++)
                    if (strcmp(skips[k].case_name, names[c]) == 0 && skips[k].line == (int)i + 1) skip = 1, skip_used[k] = 1;
                if (skip) {
                    skipped++;
                    continue;
                }
                jv req, want;
                int dup = 0;
                int ok = jread(req_lines[i], strlen(req_lines[i]), &req, &dup);
                jread(exp_lines[i], strlen(exp_lines[i]), &want, NULL);
                built b;
                const char *why = !ok ? "text that is not JSON" : dup ? "a duplicate key" : build(&req, &b);
                if (why) {
                    fprintf(stderr, "FAIL %s: palisade_request cannot express %s: list it in skip/c.txt\n", what, why);
                    failed++;
                } else {
                    char *d = decision_json(snap, &b.r);
                    check(what, d, &want);
                    free(d);
                    decided++;
                }
                jfree(&req);
                jfree(&want);
            }
            free(req_lines);
            free(exp_lines);
            free(req_text);
            free(exp_text);
            palisade_snapshot_release(snap);
        }
        palisade_error_free(err);
        palisade_engine_free(engine);
        for (size_t i = 0; i < nb; i++) free(paths[i]);
        free(paths);
        jfree(&manifest);
        free(manifest_text);
    }
    for (size_t k = 0; k < ns; k++) {
        if (!skip_used[k]) {
            fprintf(stderr, "FAIL skip/c.txt: no request %s %d\n", skips[k].case_name, skips[k].line);
            failed++;
        }
        free(skips[k].case_name);
    }
    for (size_t c = 0; c < nnames; c++) free(names[c]);
    free(names);
    free(skips);
    free(skip_lines);
    free(skip_text);
    if (decided < 60) {
        fprintf(stderr, "FAIL only %d requests decided\n", decided);
        failed++;
    }
    printf("%d decided, %d skipped, %d failed\n", decided, skipped, failed);
    return failed ? 1 : 0;
}
