//! Which codes a throw can carry: the constants of `throw`s, and the codes of the functions called
//! that may throw (fixpoint over calls). `flatten` uses it to leave out catch tests no throw can
//! fail: a try whose body can only throw 1..6, all caught, needs no test before its last handler
//! and no path for an uncaught code.

use crate::ir::{Attr, Module, OpId, Opcode, RegionId};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The codes that may be thrown; `None` when any may (a code computed at run time).
pub type Codes = Option<BTreeSet<i128>>;

/// The codes each function in `throwing` may let out (over-approximated: a code caught inside the
/// function still counts).
pub fn by_function(m: &Module, throwing: &HashSet<String>) -> HashMap<String, Codes> {
    let mut own: HashMap<String, (Codes, Vec<String>)> = HashMap::new();
    for f in m.funcs() {
        let name = m.symbol(f).unwrap_or_default().to_string();
        if throwing.contains(&name) {
            let mut callees = Vec::new();
            let codes = direct(m, &m.op(f).regions, throwing, &mut callees);
            own.insert(name, (codes, callees));
        }
    }
    let mut codes: HashMap<String, Codes> = own
        .iter()
        .map(|(f, (c, _))| (f.clone(), c.clone()))
        .collect();
    loop {
        let mut changed = false;
        for (f, (_, callees)) in &own {
            let mut now = codes[f].clone();
            for c in callees {
                now = union(now, codes.get(c).cloned().unwrap_or(None));
            }
            if now != codes[f] {
                codes.insert(f.clone(), now);
                changed = true;
            }
        }
        if !changed {
            return codes;
        }
    }
}

/// The codes a throw out of `region` may carry, given the functions' codes.
pub fn of_region(
    m: &Module,
    region: RegionId,
    functions: &HashMap<String, Codes>,
    throwing: &HashSet<String>,
) -> Codes {
    let mut callees = Vec::new();
    let mut codes = direct(m, &[region], throwing, &mut callees);
    for c in callees {
        codes = union(codes, functions.get(&c).cloned().unwrap_or(None));
    }
    codes
}

/// The constant codes of the `throw`s in `regions`; the throwing functions they call go to `callees`.
fn direct(
    m: &Module,
    regions: &[RegionId],
    throwing: &HashSet<String>,
    callees: &mut Vec<String>,
) -> Codes {
    let mut codes = Some(BTreeSet::new());
    let mut visit = |o: OpId| match m.op(o).opcode {
        Opcode::KsThrow => {
            codes = match (codes.take(), m.const_int(m.op(o).operands[0])) {
                (Some(mut set), Some(c)) => {
                    set.insert(c);
                    Some(set)
                }
                _ => None,
            }
        }
        Opcode::CoreCall => {
            if let Some(Attr::Sym(s)) = m.attr(o, "callee") {
                if throwing.contains(s) {
                    callees.push(s.clone());
                }
            }
        }
        _ => {}
    };
    for &r in regions {
        m.walk_region(r, &mut visit);
    }
    codes
}

fn union(a: Codes, b: Codes) -> Codes {
    let (mut a, b) = (a?, b?);
    a.extend(b);
    Some(a)
}
