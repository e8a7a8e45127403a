//! Builtin functions (Appendix A) and the standard BPF helpers ksc knows by name (§5.4).

use super::types::{IntTy, Ty};

impl HelperTy {
    pub fn ty(self) -> Ty {
        match self {
            HelperTy::U32 => Ty::Int(IntTy::U32),
            HelperTy::U64 => Ty::Int(IntTy::U64),
            HelperTy::I32 => Ty::Int(IntTy::I32),
            HelperTy::I64 => Ty::Int(IntTy::I64),
            HelperTy::Ptr | HelperTy::Ctx => Ty::ptr(Ty::Void),
            HelperTy::Void => Ty::Void,
            // Resolved against BTF by the checker; a void pointer stands in without BTF.
            HelperTy::TaskBtf => Ty::ptr(Ty::Void),
        }
    }
}

pub use crate::vocab::helpers::{Helper, HelperTy};

/// The helper users may call by `name` (§5.4).
pub fn helper(name: &str) -> Option<&'static Helper> {
    crate::vocab::helpers::callable(name)
}

/// The Markdown reference of the callable helpers (`docs/helpers.md`, printed by
/// `ksc helper-reference`).
pub fn helper_reference() -> String {
    let mut s = String::from("# BPF helpers callable by name\n\n<!-- @generated from HELPERS in src/vocab/helpers.rs; `ksc helper-reference` prints it. -->\n\n");
    s.push_str("Kernel code may call these BPF helpers by name without an `extern` [ext]; an `extern` of one must declare its\n");
    s.push_str("parameters, pointers as pointers and integers as integers (E0309). Parameters in brackets are the slots of a\n");
    s.push_str("variadic helper: calls and `extern`s may leave them out (they pass 0). Any other `extern` names a kfunc, checked\n");
    s.push_str("against kernel BTF ([language.md](language.md) §5.4).\n");
    s.push_str("Userspace code cannot call helpers (E0501). The id is the kernel's `enum bpf_func_id` value.\n\n");
    s.push_str("`*void` accepts any pointer, `ctx` is the program's context (its first parameter), and `*task_struct` is\n");
    s.push_str("the kernel's type from BTF, never null.\n\n");
    s.push_str("A helper marked *moves the packet* may move or resize it: the kernel then forgets every packet pointer\n");
    s.push_str("the program holds, so ksc refuses an access through one formed before the call (E0611); read `ctx->data`\n");
    s.push_str("again after it ([language.md](language.md) §10.1).\n\n");
    s.push_str("| helper | id | parameters | returns | |\n|---|---|---|---|---|\n");
    for h in crate::vocab::helpers::HELPERS.iter().filter(|h| h.callable) {
        let fixed = h.fixed_params();
        let params: Vec<&str> = h.params.iter().map(|p| p.spelling()).collect();
        let params = if params.is_empty() {
            "none".to_string()
        } else if fixed < params.len() {
            format!(
                "`{}[, {}]`",
                params[..fixed].join(", "),
                params[fixed..].join(", ")
            )
        } else {
            format!("`{}`", params.join(", "))
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | `{}` | {} |\n",
            h.name,
            h.id,
            params,
            h.ret.spelling(),
            if h.moves_packet {
                "moves the packet"
            } else {
                ""
            }
        ));
    }
    s
}

/// Builtins callable only from userspace (§9.4).
pub const USERSPACE_BUILTINS: &[&str] = &[
    "load", "attach", "detach", "read", "register", "dispatch", "daemon", "sleep", "test",
    "test_len", "assert", "exec",
];

/// Builtins available in every world.
pub const UNIVERSAL_BUILTINS: &[&str] = &[
    "print", "sizeof", "ntohs", "htons", "ntohl", "htonl", "ntohll", "htonll",
];

/// Whether `name` is a builtin function. Builtins live in a prelude scope: a top-level
/// declaration of the same name shadows the builtin in the whole unit (§2.3 [fix]).
pub fn is_builtin(name: &str) -> bool {
    USERSPACE_BUILTINS.contains(&name) || UNIVERSAL_BUILTINS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_helper_reference_is_current() {
        let committed =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/helpers.md"))
                .unwrap_or_default();
        assert!(
            committed == helper_reference(),
            "docs/helpers.md is stale: run `target/release/ksc helper-reference > docs/helpers.md`"
        );
    }

    #[test]
    fn helpers_take_at_most_five_arguments() {
        for h in crate::vocab::helpers::HELPERS {
            assert!(
                h.params.len() <= 5,
                "{} takes more than 5 arguments",
                h.name
            );
        }
    }
}
