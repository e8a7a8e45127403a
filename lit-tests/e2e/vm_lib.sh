# vm_lib.sh - what the VM scenario scripts (*_vm.sh) share. Source it after setting `work` to the
# script's temporary directory: it defines `fail` and `ok` (the `FAIL: ...` / `ok: ...` lines the
# tests check) and polling that uses bash builtins only, since every fork and exec is slow under
# TCG over 9p: `nap` (0.1 s), `contains FILE TEXT`, `wait_for CONDITION...` (up to 60 s).
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
mkfifo "$work/never"
exec 9<>"$work/never"
nap() { read -r -t 0.1 -u 9 _; }
contains() { [[ -e "$1" && "$(< "$1")" == *"$2"* ]]; }
wait_for() {
    local i
    for ((i = 0; i < 600; i++)); do "$@" && return 0; nap; done
    return 1
}
