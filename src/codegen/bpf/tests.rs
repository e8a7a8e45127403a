//! Back-end errors become ksc errors at the function they concern, never an abort.

use super::*;

#[test]
fn a_stack_overflow_is_an_error_at_its_function() {
    // 600 bytes of live stack: over the BPF limit of 512.
    let text = "module files = [\"big.ks\"] {\n  ks.func {name = @big, ty = fn(ptr<u8>) -> u32, target = \"bpf\", kind = \"xdp\", section = \"xdp\"} ({\n  ^bb0(%ctx: ptr<u8>):\n    %0 = core.local {ty = [600 x u8], volatile = true} : ptr<[600 x u8]> loc(2:5)\n    %1 = core.const {value = 7} : u32 loc(3:5)\n    %2 = core.elem_addr %0, %1 : ptr<u8> loc(3:5)\n    %3 = core.load %2 : u8 loc(3:5)\n    %4 = core.cast %3 : u32 loc(3:5)\n    core.ret %4 loc(4:5)\n  }) loc(1:1)\n}\n";
    let m = crate::ir::parse::parse_module(text).expect("parses").module;
    let errors = match compile(&m, &Options::default(), Output::Object) {
        Err(e) => e,
        Ok(_) => panic!("a 600-byte stack frame must not compile"),
    };
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("stack")
                && e.op.is_some_and(|op| m.symbol(op) == Some("big"))),
        "{errors:?}"
    );
}
