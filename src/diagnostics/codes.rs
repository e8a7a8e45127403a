//! Every error, warning and note code of docs/language.md §18 with its canonical phrase.

macro_rules! codes {
    ($($name:ident => $phrase:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code { $($name,)* }

        impl Code {
            pub fn phrase(self) -> &'static str {
                match self { $(Code::$name => $phrase,)* }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => stringify!($name),)* }
            }
        }
    };
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

codes! {
    E0001 => "unexpected character",
    E0002 => "unterminated literal or comment",
    E0003 => "invalid character or escape",
    E0004 => "invalid number literal",
    E0010 => "syntax error",
    E0011 => "unsupported syntax",
    E0012 => "unknown map kind",
    E0013 => "unknown map flag",
    E0014 => "invalid catch pattern",
    E0101 => "file not found",
    E0102 => "invalid header content",
    E0103 => "invalid include or import path",
    E0104 => "invalid imported module",
    E0106 => "invalid source file",
    E0110 => "duplicate definition",
    E0111 => "undefined name",
    E0112 => "unknown type",
    E0113 => "duplicate main",
    E0114 => "invalid main signature",
    E0115 => "nothing to compile",
    E0116 => "attribute on main",
    E0117 => "missing main",
    E0201 => "invalid attribute",
    E0202 => "invalid attribute argument",
    E0203 => "invalid program signature",
    E0204 => "unknown attach target",
    E0301 => "type mismatch",
    E0302 => "invalid operand types",
    E0303 => "expected bool",
    E0304 => "not a pointer",
    E0305 => "not indexable",
    E0306 => "unknown field",
    E0307 => "invalid struct literal",
    E0308 => "wrong number of arguments",
    E0309 => "argument type mismatch",
    E0310 => "integer literal out of range",
    E0311 => "not assignable",
    E0312 => "not a constant expression",
    E0313 => "invalid cast",
    E0314 => "missing return value",
    E0315 => "unexpected return value",
    E0316 => "invalid condition type",
    E0317 => "missing type",
    E0318 => "void value used",
    E0319 => "division by zero",
    E0320 => "shift amount out of range",
    E0401 => "break or continue outside loop",
    E0402 => "infinite loop",
    E0403 => "invalid if-let",
    E0404 => "invalid match",
    E0405 => "missing return",
    E0406 => "invalid throw value",
    E0407 => "invalid defer",
    E0408 => "kernel loop too long",
    E0409 => "kernel loop without a bound",
    E0501 => "call not allowed across targets",
    E0502 => "recursion in kernel code",
    E0503 => "program called directly",
    E0504 => "invalid tail call",
    E0506 => "test() outside tests",
    E0507 => "invalid test() target or input",
    E0508 => "local global used from userspace",
    E0509 => "config written from kernel code",
    E0601 => "stack limit exceeded",
    E0602 => "invalid array type",
    E0603 => "constant index out of bounds",
    E0604 => "invalid map use",
    E0605 => "invalid map declaration",
    E0606 => "invalid ring buffer",
    E0607 => "dangling reference",
    E0608 => "invalid ring-buffer record use",
    E0609 => "possible null dereference",
    E0610 => "invalid map operation",
    E0611 => "invalid packet pointer use",
    E0612 => "invalid object ownership",
    E0614 => "unreadable pointer passed on",
    E0613 => "pinned local global",
    E0615 => "unbalanced RCU read section",
    E0701 => "unknown struct_ops type",
    E0702 => "struct_ops member mismatch",
    E0703 => "invalid struct_ops field",
    E0704 => "invalid register argument",
    E0705 => "allocation flag outside module code",
    E0706 => "invalid allocation flag",
    E0801 => "unsupported argument field",
    E0901 => "verifier rejected program",
    E0902 => "bpf() unavailable",
    E0903 => "map not created",
    E0910 => "link failed",
    E0999 => "internal compiler error",
    W0001 => "format mismatch",
    W0002 => "non-exhaustive match",
    W0003 => "throw escapes program",
    W0004 => "unreachable code",
    W0005 => "implicit narrowing",
    W0006 => "operator continues previous line",
    W0007 => "kernel BTF unavailable",
    W0008 => "kfunc not in kernel BTF",
    W0009 => "comparison with a constant result",
    W0010 => "construct needs a newer kernel",
    N0001 => "attach target resolved",
    N0002 => "kernel fallback",
}
