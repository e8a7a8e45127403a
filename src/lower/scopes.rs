//! Lexical scopes of a function body: name → the innermost visible slot in O(1), whatever
//! the nesting depth (an else-if chain of 40k links nests 40k scopes).

use std::collections::HashMap;

pub(super) struct Scopes<S> {
    /// Each name's visible bindings, innermost last, with the depth that declared it.
    bindings: HashMap<String, Vec<(usize, S)>>,
    /// The names each open scope declared, to forget when it closes.
    declared: Vec<Vec<String>>,
}

impl<S> Scopes<S> {
    /// One open scope: the function's outermost.
    pub fn new() -> Self {
        Scopes {
            bindings: HashMap::new(),
            declared: vec![Vec::new()],
        }
    }

    pub fn open(&mut self) {
        self.declared.push(Vec::new());
    }

    pub fn close(&mut self) {
        for name in self.declared.pop().expect("an open scope") {
            if let Some(stack) = self.bindings.get_mut(&name) {
                stack.pop();
            }
        }
    }

    /// Binds `name` in the innermost scope, replacing a binding that scope already made.
    pub fn declare(&mut self, name: &str, slot: S) {
        let depth = self.declared.len();
        let stack = self.bindings.entry(name.to_string()).or_default();
        match stack.last_mut() {
            Some((d, s)) if *d == depth => *s = slot,
            _ => {
                stack.push((depth, slot));
                self.declared
                    .last_mut()
                    .expect("an open scope")
                    .push(name.to_string());
            }
        }
    }

    pub fn lookup(&self, name: &str) -> Option<&S> {
        self.bindings.get(name)?.last().map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::Scopes;

    #[test]
    fn inner_bindings_shadow_and_end_with_their_scope() {
        let mut s = Scopes::new();
        s.declare("x", 1);
        s.open();
        assert_eq!(s.lookup("x"), Some(&1));
        s.declare("x", 2);
        s.declare("x", 3);
        s.declare("y", 4);
        assert_eq!(s.lookup("x"), Some(&3));
        s.close();
        assert_eq!(s.lookup("x"), Some(&1));
        assert_eq!(s.lookup("y"), None);
    }
}
