//! Unit tests of the IR core: building, printing, parsing, verifying, dominators, the generated
//! op table, and the committed op reference.

use super::*;

fn sample() -> Module {
    let mut m = Module::new();
    m.files.push("t.ks".into());
    let body = m.body;
    let mut b = Builder::new(&mut m, body);
    let ft = Type::Func(std::rc::Rc::new(FnType {
        params: vec![Type::u32()],
        ret: Type::u32(),
    }));
    let f = b.ks_func(
        "twice",
        ft,
        crate::vocab::Target::Host,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    );
    let entry = b.entry(f, 0);
    let x = m.add_block_arg(entry, Type::u32());
    m.set_value_name(x, Some(std::rc::Rc::from("x")));
    let mut b = Builder::new(&mut m, entry);
    b.loc = Loc {
        file: 0,
        line: 2,
        col: 5,
    };
    let two = b.core_const(2, Type::u32());
    let y = b.core_mul(x, two);
    b.ks_return(&[y]);
    m
}

#[test]
fn builders_infer_result_types_and_the_module_verifies() {
    let m = sample();
    assert!(
        verify::verify_module(&m).is_empty(),
        "{:?}",
        verify::verify_module(&m)
    );
    let text = print::print_module(&m);
    assert!(
        text.contains("%1 = core.mul %x, %0 : u32 loc(2:5)"),
        "{text}"
    );
}

#[test]
fn print_parse_print_is_the_identity() {
    let text = print::print_module(&sample());
    let parsed = parse::parse_module(&text).expect("parses");
    assert_eq!(print::print_module(&parsed.module), text);
}

#[test]
fn forward_references_resolve_in_a_cfg() {
    let text = "module {\n  ks.func {name = @f, ty = fn() -> u32, target = \"host\"} ({\n  ^bb0:\n    core.br [^bb2]\n  ^bb1:\n    core.ret %0\n  ^bb2:\n    %0 = core.const {value = 1} : u32\n    core.br [^bb1]\n  })\n}\n";
    let parsed = parse::parse_module(text).expect("parses");
    assert!(verify::verify_module(&parsed.module).is_empty());
}

#[test]
fn dominance_is_checked_across_blocks() {
    // %0 is defined on one arm of a diamond and used at the join.
    let text = "module {\n  ks.func {name = @f, ty = fn(bool) -> u32, target = \"host\"} ({\n  ^bb0(%c: bool):\n    core.cond_br %c [^bb1, ^bb2] {true_args = 0}\n  ^bb1:\n    %0 = core.const {value = 1} : u32\n    core.br [^bb3]\n  ^bb2:\n    core.br [^bb3]\n  ^bb3:\n    core.ret %0\n  })\n}\n";
    let parsed = parse::parse_module(text).expect("parses");
    let errors = verify::verify_module(&parsed.module);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("not defined before this use"));
}

#[test]
fn parse_errors_carry_positions() {
    let e = parse::parse_module("module {\n  core.nope\n}\n")
        .err()
        .expect("fails");
    assert_eq!((e.line, e.col), (2, 3));
    assert!(parse::parse_module("module { ").is_err());
    assert!(parse::parse_module("").is_err());
    assert!(parse::parse_type("ptr<[4 x !S]>").is_ok());
    assert!(parse::parse_type("[0 x u8]").is_err());
}

#[test]
fn the_op_table_is_consistent() {
    for (i, op) in ops::ALL_OPCODES.iter().enumerate() {
        assert_eq!(*op as usize, i);
        assert_eq!(Opcode::from_name(op.name()), Some(*op));
        assert!(!op.info().summary.is_empty());
    }
}

#[test]
fn the_committed_op_reference_is_current() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ir-ops.md"))
        .unwrap_or_default();
    assert!(
        committed == ops::REFERENCE,
        "docs/ir-ops.md is stale: run `target/release/ksc ir-reference > docs/ir-ops.md`"
    );
}
