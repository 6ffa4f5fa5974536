#!/bin/bash
# tests/tools/check-cycles (make lint): finds a link cycle between modules of
# a folder, through calls and through data, names it with its symbols and
# fails; passes a DAG, and ignores what other folders or libraries define.
source "$(dirname "$0")/lib.sh"
it_setup
CHECK=$CCGW_ROOT/tests/tools/check-cycles
OBJ=$IT_DIR/obj

obj() { # folder module source
    mkdir -p "$OBJ/$1"
    printf '%s\n' "$3" >"$IT_DIR/$2.c"
    cc -std=c11 -c -o "$OBJ/$1/$2.o" "$IT_DIR/$2.c" || fail "cc $2"
}

# A DAG: main -> a -> b, a and main -> c; b calls libc, c reads a's table.
obj dag main 'int a_run(void); int c_get(void); int main(void) { return a_run() + c_get(); }'
obj dag a 'int b_step(void); const int a_table[2] = {1, 2}; int a_run(void) { return b_step(); }'
obj dag b '#include <string.h>
int b_step(void) { return (int)strlen("x"); }'
obj dag c 'int c_get(void) { return 3; }'
"$CHECK" "$OBJ" dag >"$IT_DIR/dag.out" 2>&1 || fail "a DAG refused: $(cat "$IT_DIR/dag.out")"
grep -q 'no link cycle in dag' "$IT_DIR/dag.out" || fail "dag: $(cat "$IT_DIR/dag.out")"

# A three-module call cycle x -> y -> z -> x, beside an acyclic module.
obj cyc x 'int y_f(void); int x_f(void) { return y_f(); }'
obj cyc y 'int z_f(void); int y_f(void) { return z_f(); }'
obj cyc z 'int x_f(void); int z_f(void) { return x_f(); } int w_f(void);'
obj cyc w 'int x_f(void); int w_f(void) { return x_f(); }'
if "$CHECK" "$OBJ" dag cyc >"$IT_DIR/cyc.out" 2>&1; then fail "a cycle passed: $(cat "$IT_DIR/cyc.out")"; fi
grep -q 'cyc: link cycle among x, y, z$' "$IT_DIR/cyc.out" || fail "cycle not named: $(cat "$IT_DIR/cyc.out")"
grep -q 'x -> y (y_f); y -> z (z_f); z -> x (x_f)' "$IT_DIR/cyc.out" ||
    fail "edges not named: $(cat "$IT_DIR/cyc.out")"
note "cycle: $(sed -n 1,2p "$IT_DIR/cyc.out" | tr '\n' ' ')"

# A cycle through data: p reads q's table, q calls p.
obj data p 'extern const int q_table[]; int p_f(void) { return q_table[0]; }'
obj data q 'int p_f(void); const int q_table[1] = {7}; int q_f(void) { return p_f(); }'
if "$CHECK" "$OBJ" data >"$IT_DIR/data.out" 2>&1; then fail "a data cycle passed"; fi
grep -q 'p -> q (q_table); q -> p (p_f)' "$IT_DIR/data.out" || fail "data: $(cat "$IT_DIR/data.out")"

# A folder without objects is an error, not a pass.
if "$CHECK" "$OBJ" missing >/dev/null 2>&1; then fail "missing folder passed"; fi
note "check-cycles: DAG passes, call and data cycles fail with their symbols"
