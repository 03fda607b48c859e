/* Record expressions (engine/expr.h): a recursive-descent compiler to postfix bytecode, and its
 * interpreter.
 *
 * The compiler parses and emits in one pass, tracking each subexpression's static type (number
 * or string) and the evaluation stack depth, so type errors and over-deep expressions are found
 * before the first record. `and` / `or` compile to conditional jumps (short circuit). A few
 * patterns are rewritten into single instructions right after both operands are emitted:
 *   asset == 'lit', signal != 'lit'     -> NAME_EQ (id interned now: an integer compare later)
 *   quality == 'bad'                    -> QUALITY_EQ
 *   startswith(asset, 'lit') and kin    -> NAMEFN (answer cached per name id)
 * The interpreter is a switch over a fixed array on the C stack; it never allocates.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expr.h"
#include "millrace/alloc.h"

#define MAX_DEPTH   64  /* parser recursion */
#define MAX_ARGS    16  /* of one function call */
#define MAX_GLOB    255 /* bytes of a match() pattern */
#define CACHE_SLOTS 64  /* per cached call site: direct-mapped by name id */
#define MAX_CACHED  32  /* call sites with a cache; further ones compute every time */

enum ty {
    TY_NONE = 0, /* error */
    TY_NUM = 1,
    TY_STR = 2,
};

enum op {
    OP_NUM,        /* push num */
    OP_STR,        /* push pool[a, a + b) */
    OP_VALUE,      /* push the record's value as a number */
    OP_TIME,       /* push time_ns */
    OP_TEXT,       /* push a string record's value, '' for others */
    OP_ASSET,      /* push the asset's name */
    OP_SIGNAL,     /* push the signal's name */
    OP_QUALITY,    /* push the quality's name */
    OP_TAG,        /* push tag a's value, '' when missing */
    OP_NAME_EQ,    /* push (flag ? signal : asset) == a, negated when n */
    OP_QUALITY_EQ, /* push quality == a, negated when n */
    OP_NEG,
    OP_NOT,
    OP_BOOL,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_CMP,    /* numbers; n: enum cmp */
    OP_SCMP,   /* strings; n: enum cmp */
    OP_JF,     /* top false: replace it by 0 and jump to a; else pop */
    OP_JT,     /* top true: replace it by 1 and jump to a; else pop */
    OP_ABS,    /* */
    OP_SQRT,   /* */
    OP_MIN,    /* of the n top numbers */
    OP_MAX,    /* */
    OP_SFN,    /* n: enum sfn, of the two top strings */
    OP_NAMEFN, /* n: enum sfn of (flag ? signal : asset) and pool[b, b + c); cache site a */
};

enum cmp {
    CMP_EQ,
    CMP_NE,
    CMP_LT,
    CMP_LE,
    CMP_GT,
    CMP_GE,
};

enum sfn {
    SFN_STARTS,
    SFN_ENDS,
    SFN_CONTAINS,
    SFN_MATCH,
};

struct ins {
    uint8_t op;
    uint8_t n;
    uint8_t flag;
    uint32_t a;
    uint32_t b;
    uint32_t c;
    double num;
};

union slot {
    double d;
    struct {
        const char *p;
        uint32_t n;
    } s;
};

struct mr_expr {
    struct ins *code;
    uint32_t ncode;
    char *pool;      /* decoded string literals */
    uint64_t *cache; /* CACHE_SLOTS per NAMEFN site: id << 2 | 2 | answer; 0 = empty */
    const struct mr_names *names;
    char *src;
};

/* ---- lexer ---- */

enum tk {
    TK_END,
    TK_NUM,
    TK_STR,
    TK_IDENT,
    TK_LP,
    TK_RP,
    TK_COMMA,
    TK_EQ,
    TK_NE,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
    TK_PLUS,
    TK_MINUS,
    TK_STAR,
    TK_SLASH,
    TK_PCT,
    TK_NOT,
    TK_AND,
    TK_OR,
};

struct tok {
    enum tk k;
    size_t pos; /* byte offset in the source */
    size_t len; /* bytes of source */
    double num;
    uint32_t str_off; /* TK_STR: decoded bytes in the pool */
    uint32_t str_len;
};

struct parser {
    const char *src;
    size_t len;
    size_t pos; /* lexer position */
    struct tok tok;
    struct mr_names *names;
    struct mr_err *err;
    int rc;
    int depth;
    int sp;    /* stack depth after the code so far */
    int maxsp; /* */
    struct ins code[MR_EXPR_MAX_CODE];
    size_t cols[MR_EXPR_MAX_CODE]; /* source offset of each instruction, for messages */
    uint32_t ncode;
    char *pool;
    uint32_t npool;
    uint32_t ncache;
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
fail(struct parser *p, int code, size_t pos, const char *fmt, ...)
{
    if (p->rc != 0) {
        return TY_NONE;
    }
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int shown = p->len > 96 ? 93 : (int)p->len;
    p->rc = MR_ERR_SET(p->err, code, "expression '%.*s%s': %s at column %zu", shown, p->src,
                       p->len > 96 ? "..." : "", msg, pos + 1);
    return TY_NONE;
}

static int unexpected(struct parser *p, const struct tok *t)
{
    if (t->k == TK_END) {
        return fail(p, MR_EPARSE, t->pos, "unexpected end of expression");
    }
    int n = t->len > 32 ? 32 : (int)t->len;
    return fail(p, MR_EPARSE, t->pos, "unexpected '%.*s'", n, p->src + t->pos);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int lex_number(struct parser *p, struct tok *t)
{
    const char *s = p->src;
    size_t i = t->pos;
    while (i < p->len && is_digit(s[i])) {
        i++;
    }
    if (i < p->len && s[i] == '.') {
        i++;
        while (i < p->len && is_digit(s[i])) {
            i++;
        }
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (s[j] == '+' || s[j] == '-')) {
            j++;
        }
        if (j < p->len && is_digit(s[j])) {
            i = j;
            while (i < p->len && is_digit(s[i])) {
                i++;
            }
        }
    }
    size_t end = i;
    while (i < p->len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.')) {
        i++;
    }
    if (i != end || end - t->pos > 63) {
        return fail(p, MR_EPARSE, t->pos, "bad number '%.*s'",
                    (int)(i - t->pos > 32 ? 32 : i - t->pos), s + t->pos);
    }
    char buf[64];
    memcpy(buf, s + t->pos, end - t->pos);
    buf[end - t->pos] = '\0';
    t->k = TK_NUM;
    t->num = strtod(buf, NULL);
    t->len = end - t->pos;
    return TY_NUM;
}

/* A quoted string, decoded into the pool (which has room for the whole source). */
static int lex_string(struct parser *p, struct tok *t)
{
    const char *s = p->src;
    char quote = s[t->pos];
    size_t i = t->pos + 1;
    t->str_off = p->npool;
    while (i < p->len && s[i] != quote) {
        char c = s[i++];
        if (c == '\\') {
            if (i >= p->len || (s[i] != '\\' && s[i] != '\'' && s[i] != '"')) {
                return fail(p, MR_EPARSE, i - 1, "unknown escape (use \\', \\\" or \\\\)");
            }
            c = s[i++];
        }
        p->pool[p->npool++] = c;
    }
    if (i >= p->len) {
        return fail(p, MR_EPARSE, t->pos, "unterminated string");
    }
    t->k = TK_STR;
    t->str_len = p->npool - t->str_off;
    t->len = i + 1 - t->pos;
    return TY_STR;
}

static void lex_ident(struct parser *p, struct tok *t)
{
    const char *s = p->src;
    size_t i = t->pos;
    while (i < p->len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.')) {
        i++;
    }
    t->len = i - t->pos;
    t->k = TK_IDENT;
    static const struct {
        const char *word;
        enum tk k;
    } words[] = {{"and", TK_AND}, {"or", TK_OR}, {"not", TK_NOT}};
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        if (strlen(words[w].word) == t->len && memcmp(words[w].word, s + t->pos, t->len) == 0) {
            t->k = words[w].k;
        }
    }
}

static int lex_operator(struct parser *p, struct tok *t)
{
    static const struct {
        const char *text;
        enum tk k;
    } ops[] = {
        {"==", TK_EQ},  {"!=", TK_NE},   {"<=", TK_LE}, {">=", TK_GE},  {"&&", TK_AND},
        {"||", TK_OR},  {"<", TK_LT},    {">", TK_GT},  {"+", TK_PLUS}, {"-", TK_MINUS},
        {"*", TK_STAR}, {"/", TK_SLASH}, {"%", TK_PCT}, {"!", TK_NOT},  {"(", TK_LP},
        {")", TK_RP},   {",", TK_COMMA},
    };
    const char *s = p->src + t->pos;
    size_t left = p->len - t->pos;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].text);
        if (n <= left && memcmp(ops[i].text, s, n) == 0) {
            t->k = ops[i].k;
            t->len = n;
            return TY_NUM;
        }
    }
    if (s[0] == '=') {
        return fail(p, MR_EPARSE, t->pos, "unexpected '=' (compare with '==')");
    }
    if (s[0] == '&' || s[0] == '|') {
        return fail(p, MR_EPARSE, t->pos, "unexpected '%c' (use 'and' / 'or', or '&&' / '||')",
                    s[0]);
    }
    if (s[0] > ' ' && s[0] < 127) {
        return fail(p, MR_EPARSE, t->pos, "unexpected '%c'", s[0]);
    }
    return fail(p, MR_EPARSE, t->pos, "unexpected byte 0x%02x", (unsigned)(unsigned char)s[0]);
}

/* Read the next token into p->tok. Returns TY_NONE on a lexical error. */
static int next(struct parser *p)
{
    const char *s = p->src;
    size_t i = p->pos;
    while (i < p->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
        i++;
    }
    struct tok t = {.k = TK_END, .pos = i};
    int ok = TY_NUM;
    if (i >= p->len) {
        t.len = 0;
    } else if (is_digit(s[i]) || (s[i] == '.' && i + 1 < p->len && is_digit(s[i + 1]))) {
        ok = lex_number(p, &t);
    } else if (is_alpha(s[i])) {
        lex_ident(p, &t);
    } else if (s[i] == '\'' || s[i] == '"') {
        ok = lex_string(p, &t);
    } else {
        ok = lex_operator(p, &t);
    }
    p->pos = t.pos + t.len;
    p->tok = t;
    return ok;
}

/* ---- code emission ---- */

/* Append an instruction that changes the stack depth by `delta`. Returns its index + 1, or 0
 * (error set) when the expression is too long or too deep. */
static uint32_t emit(struct parser *p, struct ins in, int delta, size_t col)
{
    if (p->rc != 0) {
        return 0;
    }
    if (p->ncode >= MR_EXPR_MAX_CODE) {
        fail(p, MR_ETOOBIG, col, "expression too long (over %d steps)", MR_EXPR_MAX_CODE);
        return 0;
    }
    p->sp += delta;
    if (p->sp > MR_EXPR_MAX_STACK) {
        fail(p, MR_ETOOBIG, col, "expression nested too deeply");
        return 0;
    }
    if (p->sp > p->maxsp) {
        p->maxsp = p->sp;
    }
    p->cols[p->ncode] = col;
    p->code[p->ncode++] = in;
    return p->ncode;
}

static int intern(struct parser *p, const char *s, size_t n, size_t col, mr_name_id *id)
{
    *id = 0;
    if (p->names == NULL || n == 0) {
        return 0; /* checking only; or '' which no interned name equals (id 0 = no name) */
    }
    int rc = mr_names_intern(p->names, s, n, id);
    if (rc != 0) {
        fail(p, rc, col, "cannot intern the name '%.*s': %s", (int)(n > 40 ? 40 : n), s,
             mr_strerror(rc));
        return rc;
    }
    return 0;
}

static int parse_or(struct parser *p);

static const char *const quality_names[] = {"good", "uncertain", "bad"};

/* `a == b` / `a != b` of one-instruction operands: a name or quality against a literal. */
static int try_fuse_eq(struct parser *p, uint32_t l0, enum tk k)
{
    if (p->ncode != l0 + 2 || (k != TK_EQ && k != TK_NE)) {
        return 0;
    }
    struct ins *x = &p->code[l0];
    struct ins *lit = &p->code[l0 + 1];
    if (x->op == OP_STR) {
        struct ins *t = x;
        x = lit;
        lit = t;
    }
    if (lit->op != OP_STR || (x->op != OP_ASSET && x->op != OP_SIGNAL && x->op != OP_QUALITY)) {
        return 0;
    }
    const char *s = p->pool + lit->a;
    size_t n = lit->b;
    size_t col = p->cols[lit - p->code];
    struct ins fused = {.n = k == TK_NE};
    if (x->op == OP_QUALITY) {
        fused.op = OP_QUALITY_EQ;
        fused.a = 3;
        for (uint32_t q = 0; q < 3; q++) {
            if (strlen(quality_names[q]) == n && memcmp(quality_names[q], s, n) == 0) {
                fused.a = q;
            }
        }
        if (fused.a == 3) {
            fail(p, MR_EPARSE, col, "quality is 'good', 'uncertain' or 'bad', not '%.*s'",
                 (int)(n > 32 ? 32 : n), s);
            return -1;
        }
    } else {
        fused.op = OP_NAME_EQ;
        fused.flag = x->op == OP_SIGNAL;
        mr_name_id id = 0;
        if (intern(p, s, n, col, &id) != 0) {
            return -1;
        }
        fused.a = id;
    }
    size_t at = p->cols[l0];
    p->ncode = l0;
    p->sp -= 2;
    return emit(p, fused, 1, at) != 0 ? 1 : -1;
}

static int is_cmp(enum tk k)
{
    return k == TK_EQ || k == TK_NE || k == TK_LT || k == TK_LE || k == TK_GT || k == TK_GE;
}

static int cmp_of(enum tk k)
{
    switch (k) {
    case TK_EQ:
        return CMP_EQ;
    case TK_NE:
        return CMP_NE;
    case TK_LT:
        return CMP_LT;
    case TK_LE:
        return CMP_LE;
    case TK_GT:
        return CMP_GT;
    default:
        return CMP_GE;
    }
}

static int parse_ident(struct parser *p, const struct tok *t)
{
    static const struct {
        const char *name;
        enum op op;
        enum ty ty;
        double num;
    } idents[] = {
        {"value", OP_VALUE, TY_NUM, 0}, {"time", OP_TIME, TY_NUM, 0},
        {"text", OP_TEXT, TY_STR, 0},   {"signal", OP_SIGNAL, TY_STR, 0},
        {"asset", OP_ASSET, TY_STR, 0}, {"quality", OP_QUALITY, TY_STR, 0},
        {"true", OP_NUM, TY_NUM, 1},    {"false", OP_NUM, TY_NUM, 0},
    };
    const char *s = p->src + t->pos;
    for (size_t i = 0; i < sizeof(idents) / sizeof(idents[0]); i++) {
        if (strlen(idents[i].name) == t->len && memcmp(idents[i].name, s, t->len) == 0) {
            struct ins in = {.op = (uint8_t)idents[i].op, .num = idents[i].num};
            return emit(p, in, 1, t->pos) != 0 ? (int)idents[i].ty : TY_NONE;
        }
    }
    if (t->len >= 5 && memcmp(s, "tags.", 5) == 0) {
        if (t->len == 5) {
            return fail(p, MR_EPARSE, t->pos + 5, "tag name missing after 'tags.'");
        }
        mr_name_id id = 0;
        if (intern(p, s + 5, t->len - 5, t->pos + 5, &id) != 0) {
            return TY_NONE;
        }
        return emit(p, (struct ins){.op = OP_TAG, .a = id}, 1, t->pos) != 0 ? TY_STR : TY_NONE;
    }
    int n = t->len > 32 ? 32 : (int)t->len;
    return fail(p, MR_EPARSE, t->pos,
                "unknown name '%.*s' (known: value, time, text, signal, asset, quality, "
                "tags.NAME)",
                n, s);
}

enum fn_kind {
    FN_ABS,
    FN_SQRT,
    FN_MIN,
    FN_MAX,
    FN_STARTS,
    FN_ENDS,
    FN_CONTAINS,
    FN_MATCH,
    FN_TAG,
};

struct fn {
    const char *name;
    enum fn_kind kind;
    int min_args;
    int max_args;
    enum ty arg;
    enum ty result;
};

static const struct fn fns[] = {
    {"abs", FN_ABS, 1, 1, TY_NUM, TY_NUM},           {"sqrt", FN_SQRT, 1, 1, TY_NUM, TY_NUM},
    {"min", FN_MIN, 2, MAX_ARGS, TY_NUM, TY_NUM},    {"max", FN_MAX, 2, MAX_ARGS, TY_NUM, TY_NUM},
    {"startswith", FN_STARTS, 2, 2, TY_STR, TY_NUM}, {"endswith", FN_ENDS, 2, 2, TY_STR, TY_NUM},
    {"contains", FN_CONTAINS, 2, 2, TY_STR, TY_NUM}, {"match", FN_MATCH, 2, 2, TY_STR, TY_NUM},
    {"tag", FN_TAG, 1, 1, TY_STR, TY_STR},
};

static int parse_args(struct parser *p, const struct fn *f, uint32_t *starts, int *nargs)
{
    *nargs = 0;
    if (p->tok.k != TK_RP) {
        for (;;) {
            if (*nargs == MAX_ARGS) {
                return fail(p, MR_EPARSE, p->tok.pos, "too many arguments (at most %d)", MAX_ARGS);
            }
            starts[*nargs] = p->ncode;
            size_t col = p->tok.pos;
            int ty = parse_or(p);
            if (ty == TY_NONE) {
                return TY_NONE;
            }
            if (ty != (int)f->arg) {
                return fail(p, MR_EPARSE, col, "'%s' takes %s", f->name,
                            f->arg == TY_NUM ? "numbers" : "strings");
            }
            (*nargs)++;
            if (p->tok.k != TK_COMMA) {
                break;
            }
            if (next(p) == TY_NONE) {
                return TY_NONE;
            }
        }
    }
    if (p->tok.k != TK_RP) {
        return p->tok.k == TK_END ? fail(p, MR_EPARSE, p->tok.pos,
                                         "missing ')' after the arguments of '%s'", f->name)
                                  : unexpected(p, &p->tok);
    }
    starts[*nargs] = p->ncode;
    return next(p);
}

/* A string function call whose arguments are compiled: a cached NAMEFN when the subject is
 * asset/signal and the other argument a literal, else SFN. */
static int emit_sfn(struct parser *p, const struct fn *f, const uint32_t *starts, size_t col)
{
    enum sfn k = f->kind == FN_STARTS     ? SFN_STARTS
                 : f->kind == FN_ENDS     ? SFN_ENDS
                 : f->kind == FN_CONTAINS ? SFN_CONTAINS
                                          : SFN_MATCH;
    struct ins *subj = &p->code[starts[0]];
    struct ins *lit = &p->code[starts[1]];
    bool lit_ok = starts[2] - starts[1] == 1 && lit->op == OP_STR;
    if (k == SFN_MATCH && !lit_ok) {
        return fail(p, MR_EPARSE, p->cols[starts[1]],
                    "the pattern of 'match' must be a quoted string");
    }
    if (k == SFN_MATCH && lit->b > MAX_GLOB) {
        return fail(p, MR_EPARSE, p->cols[starts[1]], "pattern longer than %d bytes", MAX_GLOB);
    }
    if (lit_ok && starts[1] - starts[0] == 1 && (subj->op == OP_ASSET || subj->op == OP_SIGNAL) &&
        p->ncache < MAX_CACHED) {
        struct ins in = {.op = OP_NAMEFN,
                         .n = (uint8_t)k,
                         .flag = subj->op == OP_SIGNAL,
                         .a = p->ncache++,
                         .b = lit->a,
                         .c = lit->b};
        p->ncode = starts[0];
        p->sp -= 2;
        return emit(p, in, 1, col) != 0 ? TY_NUM : TY_NONE;
    }
    return emit(p, (struct ins){.op = OP_SFN, .n = (uint8_t)k}, -1, col) != 0 ? TY_NUM : TY_NONE;
}

static int parse_call(struct parser *p, const struct tok *name)
{
    const struct fn *f = NULL;
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        if (strlen(fns[i].name) == name->len &&
            memcmp(fns[i].name, p->src + name->pos, name->len) == 0) {
            f = &fns[i];
        }
    }
    if (f == NULL) {
        int n = name->len > 32 ? 32 : (int)name->len;
        return fail(p, MR_EPARSE, name->pos,
                    "unknown function '%.*s' (known: abs, sqrt, min, max, startswith, endswith, "
                    "contains, match, tag)",
                    n, p->src + name->pos);
    }
    uint32_t starts[MAX_ARGS + 1];
    int nargs = 0;
    if (next(p) == TY_NONE || parse_args(p, f, starts, &nargs) == TY_NONE) {
        return TY_NONE;
    }
    if (nargs < f->min_args || nargs > f->max_args) {
        return fail(p, MR_EPARSE, name->pos, "'%s' takes %s%d argument%s", f->name,
                    f->max_args > f->min_args ? "at least " : "", f->min_args,
                    f->min_args == 1 ? "" : "s");
    }
    switch (f->kind) {
    case FN_ABS:
    case FN_SQRT: {
        struct ins in = {.op = f->kind == FN_ABS ? OP_ABS : OP_SQRT};
        return emit(p, in, 0, name->pos) != 0 ? TY_NUM : TY_NONE;
    }
    case FN_MIN:
    case FN_MAX: {
        struct ins in = {.op = f->kind == FN_MIN ? OP_MIN : OP_MAX, .n = (uint8_t)nargs};
        return emit(p, in, 1 - nargs, name->pos) != 0 ? TY_NUM : TY_NONE;
    }
    case FN_TAG: {
        struct ins *lit = &p->code[starts[0]];
        if (starts[1] - starts[0] != 1 || lit->op != OP_STR || lit->b == 0) {
            return fail(p, MR_EPARSE, p->cols[starts[0]], "'tag' takes a quoted tag name");
        }
        mr_name_id id = 0;
        if (intern(p, p->pool + lit->a, lit->b, p->cols[starts[0]], &id) != 0) {
            return TY_NONE;
        }
        p->ncode = starts[0];
        p->sp -= 1;
        return emit(p, (struct ins){.op = OP_TAG, .a = id}, 1, name->pos) != 0 ? TY_STR : TY_NONE;
    }
    default:
        return emit_sfn(p, f, starts, name->pos);
    }
}

static int parse_primary(struct parser *p)
{
    struct tok t = p->tok;
    switch (t.k) {
    case TK_NUM:
        if (emit(p, (struct ins){.op = OP_NUM, .num = t.num}, 1, t.pos) == 0) {
            return TY_NONE;
        }
        return next(p) != TY_NONE ? TY_NUM : TY_NONE;
    case TK_STR:
        if (emit(p, (struct ins){.op = OP_STR, .a = t.str_off, .b = t.str_len}, 1, t.pos) == 0) {
            return TY_NONE;
        }
        return next(p) != TY_NONE ? TY_STR : TY_NONE;
    case TK_LP: {
        if (next(p) == TY_NONE) {
            return TY_NONE;
        }
        int ty = parse_or(p);
        if (ty == TY_NONE) {
            return TY_NONE;
        }
        if (p->tok.k != TK_RP) {
            return p->tok.k == TK_END ? fail(p, MR_EPARSE, t.pos, "'(' is never closed")
                                      : unexpected(p, &p->tok);
        }
        return next(p) != TY_NONE ? ty : TY_NONE;
    }
    case TK_IDENT:
        if (next(p) == TY_NONE) {
            return TY_NONE;
        }
        if (p->tok.k == TK_LP) {
            return parse_call(p, &t);
        }
        return parse_ident(p, &t);
    default:
        return unexpected(p, &t);
    }
}

static int parse_unary(struct parser *p)
{
    if (p->tok.k != TK_MINUS) {
        return parse_primary(p);
    }
    struct tok op = p->tok;
    if (next(p) == TY_NONE) {
        return TY_NONE;
    }
    if (++p->depth > MAX_DEPTH) {
        return fail(p, MR_ETOOBIG, op.pos, "expression nested too deeply");
    }
    uint32_t start = p->ncode;
    int ty = parse_unary(p);
    p->depth--;
    if (ty == TY_NONE) {
        return TY_NONE;
    }
    if (ty != TY_NUM) {
        return fail(p, MR_EPARSE, op.pos, "'-' needs a number");
    }
    if (p->ncode == start + 1 && p->code[start].op == OP_NUM) {
        p->code[start].num = -p->code[start].num; /* a negative literal */
        return TY_NUM;
    }
    return emit(p, (struct ins){.op = OP_NEG}, 0, op.pos) != 0 ? TY_NUM : TY_NONE;
}

/* Left-associative binary levels of numbers: product (* / %) and sum (+ -). */
static int parse_arith(struct parser *p, bool sum)
{
    int lt = sum ? parse_arith(p, false) : parse_unary(p);
    for (;;) {
        enum tk k = p->tok.k;
        bool mine =
            sum ? (k == TK_PLUS || k == TK_MINUS) : (k == TK_STAR || k == TK_SLASH || k == TK_PCT);
        if (lt == TY_NONE || !mine) {
            return lt;
        }
        struct tok op = p->tok;
        if (next(p) == TY_NONE) {
            return TY_NONE;
        }
        int rt = sum ? parse_arith(p, false) : parse_unary(p);
        if (rt == TY_NONE) {
            return TY_NONE;
        }
        if (lt != TY_NUM || rt != TY_NUM) {
            return fail(p, MR_EPARSE, op.pos, "'%.*s' needs numbers, not strings", (int)op.len,
                        p->src + op.pos);
        }
        enum op o = k == TK_PLUS    ? OP_ADD
                    : k == TK_MINUS ? OP_SUB
                    : k == TK_STAR  ? OP_MUL
                    : k == TK_SLASH ? OP_DIV
                                    : OP_MOD;
        if (emit(p, (struct ins){.op = (uint8_t)o}, -1, op.pos) == 0) {
            return TY_NONE;
        }
    }
}

static int parse_cmp(struct parser *p)
{
    uint32_t l0 = p->ncode;
    int lt = parse_arith(p, true);
    if (lt == TY_NONE || !is_cmp(p->tok.k)) {
        return lt;
    }
    struct tok op = p->tok;
    if (next(p) == TY_NONE) {
        return TY_NONE;
    }
    int rt = parse_arith(p, true);
    if (rt == TY_NONE) {
        return TY_NONE;
    }
    if (lt != rt) {
        return fail(p, MR_EPARSE, op.pos, "cannot compare a %s with a %s",
                    lt == TY_NUM ? "number" : "string", rt == TY_NUM ? "number" : "string");
    }
    if (is_cmp(p->tok.k)) {
        return fail(p, MR_EPARSE, p->tok.pos, "comparisons do not chain: write 'a < b and b < c'");
    }
    if (lt == TY_STR) {
        int fused = try_fuse_eq(p, l0, op.k);
        if (fused != 0) {
            return fused > 0 ? TY_NUM : TY_NONE;
        }
    }
    struct ins in = {.op = lt == TY_NUM ? OP_CMP : OP_SCMP, .n = (uint8_t)cmp_of(op.k)};
    return emit(p, in, -1, op.pos) != 0 ? TY_NUM : TY_NONE;
}

static int parse_not(struct parser *p)
{
    if (p->tok.k != TK_NOT) {
        return parse_cmp(p);
    }
    struct tok op = p->tok;
    if (next(p) == TY_NONE) {
        return TY_NONE;
    }
    if (++p->depth > MAX_DEPTH) {
        return fail(p, MR_ETOOBIG, op.pos, "expression nested too deeply");
    }
    int ty = parse_not(p);
    p->depth--;
    if (ty == TY_NONE) {
        return TY_NONE;
    }
    if (ty != TY_NUM) {
        return fail(p, MR_EPARSE, op.pos, "'%.*s' needs a condition, not a string", (int)op.len,
                    p->src + op.pos);
    }
    return emit(p, (struct ins){.op = OP_NOT}, 0, op.pos) != 0 ? TY_NUM : TY_NONE;
}

/* `and` (or=false) / `or` (or=true): left-associative, short-circuit. */
static int parse_logic(struct parser *p, bool is_or)
{
    int lt = is_or ? parse_logic(p, false) : parse_not(p);
    while (lt != TY_NONE && p->tok.k == (is_or ? TK_OR : TK_AND)) {
        struct tok op = p->tok;
        if (lt != TY_NUM) {
            return fail(p, MR_EPARSE, op.pos, "'%.*s' needs conditions, not strings", (int)op.len,
                        p->src + op.pos);
        }
        uint32_t jump = emit(p, (struct ins){.op = is_or ? OP_JT : OP_JF}, -1, op.pos);
        if (jump == 0 || next(p) == TY_NONE) {
            return TY_NONE;
        }
        int rt = is_or ? parse_logic(p, false) : parse_not(p);
        if (rt == TY_NONE) {
            return TY_NONE;
        }
        if (rt != TY_NUM) {
            return fail(p, MR_EPARSE, op.pos, "'%.*s' needs conditions, not strings", (int)op.len,
                        p->src + op.pos);
        }
        if (emit(p, (struct ins){.op = OP_BOOL}, 0, op.pos) == 0) {
            return TY_NONE;
        }
        p->code[jump - 1].a = p->ncode;
        lt = TY_NUM;
    }
    return lt;
}

static int parse_or(struct parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        return fail(p, MR_ETOOBIG, p->tok.pos, "expression nested too deeply");
    }
    int ty = parse_logic(p, true);
    p->depth--;
    return ty;
}

/* ---- public: compile ---- */

static int compile_into(struct parser *p, struct mr_expr *e)
{
    if (next(p) == TY_NONE) {
        return p->rc;
    }
    if (p->tok.k == TK_END) {
        fail(p, MR_EPARSE, 0, "empty expression");
        return p->rc;
    }
    int ty = parse_or(p);
    if (ty != TY_NONE && p->tok.k != TK_END) {
        unexpected(p, &p->tok);
    } else if (ty == TY_STR) {
        fail(p, MR_EPARSE, 0,
             "the result is a string, not a condition (compare it: asset == 'plant1/press3')");
    }
    if (p->rc != 0) {
        return p->rc;
    }
    e->code = mr_malloc(p->ncode * sizeof(struct ins));
    e->cache = mr_calloc((size_t)p->ncache * CACHE_SLOTS + 1, sizeof(uint64_t));
    if (e->code == NULL || e->cache == NULL) {
        return MR_ERR_SET(p->err, MR_ENOMEM, "out of memory compiling an expression");
    }
    memcpy(e->code, p->code, p->ncode * sizeof(struct ins));
    e->ncode = p->ncode;
    return 0;
}

int mr_expr_compile(struct mr_expr **out, const char *src, struct mr_names *names,
                    struct mr_err *err)
{
    size_t len = strlen(src);
    if (len > MR_EXPR_MAX_LEN) {
        return MR_ERR_SET(err, MR_ETOOBIG, "expression '%.40s...' is longer than %d bytes", src,
                          MR_EXPR_MAX_LEN);
    }
    struct mr_expr *e = mr_calloc(1, sizeof(*e));
    struct parser *p = mr_calloc(1, sizeof(*p)); /* ~20 KiB: not on the stack */
    int rc = MR_ENOMEM;
    if (e == NULL || p == NULL || (e->src = mr_strdup(src)) == NULL ||
        (e->pool = mr_malloc(len + 1)) == NULL) {
        MR_ERR_SET(err, rc, "out of memory compiling an expression");
        goto done;
    }
    *p = (struct parser){.src = e->src, .len = len, .names = names, .err = err, .pool = e->pool};
    e->names = names;
    rc = compile_into(p, e);
done:
    mr_free(p);
    if (rc != 0) {
        mr_expr_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

void mr_expr_destroy(struct mr_expr *e)
{
    if (e == NULL) {
        return;
    }
    mr_free(e->code);
    mr_free(e->pool);
    mr_free(e->cache);
    mr_free(e->src);
    mr_free(e);
}

const char *mr_expr_source(const struct mr_expr *e)
{
    return e->src;
}

/* ---- evaluation ---- */

/* Glob of `*` (within a segment), `**` (across '/') and `?` by simulating its automaton over
 * pattern positions: linear in the text, no backtracking blow-up. */
static bool glob_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    uint8_t kind[MAX_GLOB + 1]; /* 0 literal, 1 '?', 2 '*', 3 '**' */
    char lit[MAX_GLOB + 1];
    bool cur[MAX_GLOB + 2];
    bool nxt[MAX_GLOB + 2];
    size_t m = 0;
    for (size_t i = 0; i < plen && m <= MAX_GLOB; i++, m++) {
        kind[m] = pat[i] == '?' ? 1 : pat[i] == '*' ? 2 : 0;
        lit[m] = pat[i];
        if (kind[m] == 2 && i + 1 < plen && pat[i + 1] == '*') {
            kind[m] = 3;
            while (i + 1 < plen && pat[i + 1] == '*') {
                i++;
            }
        }
    }
    memset(cur, 0, m + 1);
    cur[0] = true;
    for (size_t j = 0;; j++) {
        for (size_t q = 0; q < m; q++) { /* a star may match nothing */
            if (cur[q] && kind[q] >= 2) {
                cur[q + 1] = true;
            }
        }
        if (j == slen) {
            return cur[m];
        }
        char c = s[j];
        bool any = false;
        memset(nxt, 0, m + 1);
        for (size_t q = 0; q < m; q++) {
            if (!cur[q]) {
                continue;
            }
            bool step = kind[q] == 0 ? lit[q] == c : kind[q] == 1 ? c != '/' : false;
            bool stay = kind[q] == 3 || (kind[q] == 2 && c != '/');
            nxt[q + 1] |= step;
            nxt[q] |= stay;
            any |= step || stay;
        }
        if (!any) {
            return false;
        }
        memcpy(cur, nxt, m + 1);
    }
}

static bool sfn_apply(enum sfn k, const char *s, size_t n, const char *t, size_t tn)
{
    switch (k) {
    case SFN_STARTS:
        return tn <= n && memcmp(s, t, tn) == 0;
    case SFN_ENDS:
        return tn <= n && memcmp(s + n - tn, t, tn) == 0;
    case SFN_CONTAINS:
        return tn == 0 || (tn <= n && memmem(s, n, t, tn) != NULL);
    case SFN_MATCH:
        return glob_match(t, tn, s, n);
    }
    return false;
}

static int scmp(const union slot *a, const union slot *b)
{
    size_t n = a->s.n < b->s.n ? a->s.n : b->s.n;
    int c = n > 0 ? memcmp(a->s.p, b->s.p, n) : 0;
    if (c != 0) {
        return c;
    }
    return a->s.n < b->s.n ? -1 : a->s.n > b->s.n;
}

static double cmp_result(int kind, double a, double b)
{
    switch (kind) {
    case CMP_EQ:
        return a == b;
    case CMP_NE:
        return a != b && a == a && b == b; /* NaN compares false, even with != */
    case CMP_LT:
        return a < b;
    case CMP_LE:
        return a <= b;
    case CMP_GT:
        return a > b;
    default:
        return a >= b;
    }
}

/* Arithmetic and numeric comparison. */
static double binary(const struct ins *in, double a, double b)
{
    switch ((enum op)in->op) {
    case OP_ADD:
        return a + b;
    case OP_SUB:
        return a - b;
    case OP_MUL:
        return a * b;
    case OP_DIV:
        return b == 0 ? NAN : a / b;
    case OP_MOD:
        return b == 0 ? NAN : fmod(a, b);
    default:
        return cmp_result(in->n, a, b);
    }
}

/* min/max of in->n numbers starting at args. NaN is contagious: a missing input must not
 * look like an extreme. */
static double extreme(const struct ins *in, const union slot *args)
{
    double m = args[0].d;
    for (int i = 1; i < in->n; i++) {
        double x = args[i].d;
        m = (isnan(m) || isnan(x)) ? NAN : in->op == OP_MIN ? (x < m ? x : m) : (x > m ? x : m);
    }
    return m;
}

static bool truthy(double d)
{
    return d != 0 && d == d;
}

static union slot name_slot(const struct mr_expr *e, mr_name_id id)
{
    size_t n = 0;
    const char *s = id != 0 ? mr_names_str(e->names, id, &n) : NULL;
    return (union slot){.s = {.p = s != NULL ? s : "", .n = s != NULL ? (uint32_t)n : 0}};
}

static double record_number(const struct mr_record *r)
{
    switch (r->type) {
    case MR_VALUE_F64:
        return r->v.f64;
    case MR_VALUE_I64:
        return (double)r->v.i64;
    case MR_VALUE_BOOL:
        return r->v.b ? 1 : 0;
    default:
        return NAN;
    }
}

static union slot tag_slot(const struct mr_record *r, mr_name_id key)
{
    for (uint16_t i = 0; i < r->ntags && i < MR_RECORD_MAX_TAGS; i++) {
        if (r->tags[i].key == key) {
            return (union slot){.s = {.p = r->tags[i].value.ptr, .n = r->tags[i].value.len}};
        }
    }
    return (union slot){.s = {.p = "", .n = 0}};
}

static bool namefn(struct mr_expr *e, const struct ins *in, const struct mr_record *r)
{
    mr_name_id id = in->flag ? r->signal : r->asset;
    uint64_t *slot = &e->cache[(size_t)in->a * CACHE_SLOTS + (id & (CACHE_SLOTS - 1))];
    uint64_t want = (uint64_t)id << 2 | 2;
    if ((*slot & ~(uint64_t)1) == want) {
        return (*slot & 1) != 0;
    }
    union slot s = name_slot(e, id);
    bool yes = sfn_apply((enum sfn)in->n, s.s.p, s.s.n, e->pool + in->b, in->c);
    *slot = want | (yes ? 1 : 0);
    return yes;
}

double mr_expr_eval(struct mr_expr *e, const struct mr_record *rec)
{
    union slot st[MR_EXPR_MAX_STACK + 1];
    int sp = 0; /* next free slot; the compiler proved it stays within bounds */
    for (uint32_t pc = 0; pc < e->ncode; pc++) {
        const struct ins *in = &e->code[pc];
        switch ((enum op)in->op) {
        case OP_NUM:
            st[sp++].d = in->num;
            break;
        case OP_STR:
            st[sp++] = (union slot){.s = {.p = e->pool + in->a, .n = in->b}};
            break;
        case OP_VALUE:
            st[sp++].d = record_number(rec);
            break;
        case OP_TIME:
            st[sp++].d = (double)rec->time_ns;
            break;
        case OP_TEXT:
            st[sp++] = rec->type == MR_VALUE_STRING
                           ? (union slot){.s = {.p = rec->v.str.ptr, .n = rec->v.str.len}}
                           : (union slot){.s = {.p = "", .n = 0}};
            break;
        case OP_ASSET:
            st[sp++] = name_slot(e, rec->asset);
            break;
        case OP_SIGNAL:
            st[sp++] = name_slot(e, rec->signal);
            break;
        case OP_QUALITY: {
            const char *q = rec->quality < 3 ? quality_names[rec->quality] : "";
            st[sp++] = (union slot){.s = {.p = q, .n = (uint32_t)strlen(q)}};
            break;
        }
        case OP_TAG:
            st[sp++] = tag_slot(rec, in->a);
            break;
        case OP_NAME_EQ:
            st[sp++].d = ((in->flag ? rec->signal : rec->asset) == in->a) != (in->n != 0);
            break;
        case OP_QUALITY_EQ:
            st[sp++].d = (rec->quality == in->a) != (in->n != 0);
            break;
        case OP_NEG:
            st[sp - 1].d = -st[sp - 1].d;
            break;
        case OP_NOT:
            st[sp - 1].d = truthy(st[sp - 1].d) ? 0 : 1;
            break;
        case OP_BOOL:
            st[sp - 1].d = truthy(st[sp - 1].d) ? 1 : 0;
            break;
        case OP_ADD:
        case OP_SUB:
        case OP_MUL:
        case OP_DIV:
        case OP_MOD:
        case OP_CMP:
            sp--;
            st[sp - 1].d = binary(in, st[sp - 1].d, st[sp].d);
            break;
        case OP_SCMP: {
            sp--;
            int c = scmp(&st[sp - 1], &st[sp]);
            st[sp - 1].d = cmp_result(in->n, c, 0);
            break;
        }
        case OP_JF:
        case OP_JT: {
            bool t = truthy(st[sp - 1].d);
            if (t == (in->op == OP_JT)) {
                st[sp - 1].d = t ? 1 : 0;
                pc = in->a - 1; /* the loop's pc++ lands on a */
            } else {
                sp--;
            }
            break;
        }
        case OP_ABS:
            st[sp - 1].d = fabs(st[sp - 1].d);
            break;
        case OP_SQRT:
            st[sp - 1].d = st[sp - 1].d < 0 ? NAN : sqrt(st[sp - 1].d);
            break;
        case OP_MIN:
        case OP_MAX:
            sp -= in->n - 1;
            st[sp - 1].d = extreme(in, &st[sp - 1]);
            break;
        case OP_SFN:
            sp--;
            st[sp - 1].d =
                sfn_apply((enum sfn)in->n, st[sp - 1].s.p, st[sp - 1].s.n, st[sp].s.p, st[sp].s.n);
            break;
        case OP_NAMEFN:
            st[sp++].d = namefn(e, in, rec);
            break;
        }
    }
    return st[0].d;
}

bool mr_expr_test(struct mr_expr *e, const struct mr_record *rec)
{
    return truthy(mr_expr_eval(e, rec));
}
