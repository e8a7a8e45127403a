//! The typed AST. Every node carries the byte span of its source text; expressions also carry an
//! `ExprId` so later phases can keep per-expression facts (types, constant values) in side tables.

use crate::diagnostics::Span;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// All items of a compilation unit after include expansion, plus the imported modules.
#[derive(Debug, Default)]
pub struct Unit {
    pub items: Vec<Item>,
    pub imports: Vec<ImportedModule>,
    /// Number of `ExprId`s handed out (sizes side tables).
    pub expr_count: u32,
}

/// A module brought in by `import NAME from "path.ks"` (its items), or by
/// `import NAME from "path.py"` (no items: its source, called through embedded CPython, §5.2).
#[derive(Debug)]
pub struct ImportedModule {
    pub name: Ident,
    pub items: Vec<Item>,
    pub python: Option<PythonSource>,
}

/// The `.py` file of a Python import, read at compile time and embedded in the executable.
#[derive(Debug, Clone)]
pub struct PythonSource {
    /// The path as found (relative to the importing file's directory).
    pub path: String,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub attrs: Vec<Attribute>,
    pub kind: ItemKind,
    pub span: Span,
    /// Declared in an included `.kh` header (views of kernel types, §10.4).
    pub from_header: bool,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: Ident,
    /// `None` for `@helper`, `Some(vec![])` for `@helper()`.
    pub args: Option<Vec<AttrArg>>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum AttrArg {
    Str(Vec<u8>, Span),
    Int(u64, Span),
    Flag {
        name: Ident,
        arg: Option<(u64, Span)>,
    },
}

impl AttrArg {
    pub fn span(&self) -> Span {
        match self {
            AttrArg::Str(_, s) | AttrArg::Int(_, s) => *s,
            AttrArg::Flag { name, arg } => arg.map(|(_, s)| name.span.to(s)).unwrap_or(name.span),
        }
    }
}

#[derive(Debug, Clone)]
pub enum ItemKind {
    Include(StrLit),
    Import { name: Ident, path: StrLit },
    Config(ConfigDecl),
    Map(MapDecl),
    Global(GlobalDecl),
    Const(ConstDecl),
    Struct(StructDecl),
    Enum(EnumDecl),
    Alias { name: Ident, ty: TypeExpr },
    Extern(ExternDecl),
    Func(FuncDecl),
    Impl(ImplDecl),
}

impl ItemKind {
    /// The name the item declares in the file namespace, if any.
    pub fn declared_name(&self) -> Option<&Ident> {
        match self {
            ItemKind::Include(_) => None,
            ItemKind::Import { name, .. } => Some(name),
            ItemKind::Config(d) => Some(&d.name),
            ItemKind::Map(d) => Some(&d.name),
            ItemKind::Global(d) => Some(&d.name),
            ItemKind::Const(d) => Some(&d.name),
            ItemKind::Struct(d) => Some(&d.name),
            ItemKind::Enum(d) => Some(&d.name),
            ItemKind::Alias { name, .. } => Some(name),
            ItemKind::Extern(d) => Some(&d.name),
            ItemKind::Func(d) => Some(&d.name),
            ItemKind::Impl(d) => Some(&d.name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StrLit {
    pub value: Vec<u8>,
    pub span: Span,
}

impl StrLit {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

#[derive(Debug, Clone)]
pub struct ConfigDecl {
    pub name: Ident,
    pub fields: Vec<ConfigField>,
}

#[derive(Debug, Clone)]
pub struct ConfigField {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct MapDecl {
    pub name: Ident,
    pub ty: MapTypeExpr,
    pub pinned: bool,
    pub flags: Vec<MapFlag>,
}

#[derive(Debug, Clone)]
pub struct MapFlag {
    pub name: Ident,
    pub arg: Option<(u64, Span)>,
}

#[derive(Debug, Clone)]
pub struct GlobalDecl {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub init: Option<Expr>,
    pub pinned: bool,
    pub local: bool,
}

#[derive(Debug, Clone)]
pub struct ConstDecl {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub init: Expr,
}

#[derive(Debug, Clone)]
pub struct StructDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
}

#[derive(Debug, Clone)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone)]
pub struct EnumDecl {
    pub name: Ident,
    pub variants: Vec<EnumVariant>,
}

#[derive(Debug, Clone)]
pub struct EnumVariant {
    pub name: Ident,
    /// Explicit value, already negated for `= -N`.
    pub value: Option<(i128, Span)>,
}

#[derive(Debug, Clone)]
pub struct ExternDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
}

#[derive(Debug, Clone)]
pub struct FuncDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: RetSpec,
    pub body: Block,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone)]
pub enum RetSpec {
    /// No `->`: `u32` if the body returns a value, else `void` (§5.3).
    Inferred,
    Type(TypeExpr),
    Named(Ident, TypeExpr),
}

impl RetSpec {
    pub fn type_expr(&self) -> Option<&TypeExpr> {
        match self {
            RetSpec::Inferred => None,
            RetSpec::Type(t) | RetSpec::Named(_, t) => Some(t),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImplDecl {
    pub name: Ident,
    pub methods: Vec<Item>,
    pub fields: Vec<ImplField>,
}

#[derive(Debug, Clone)]
pub struct ImplField {
    pub name: Ident,
    pub value: Expr,
}

// ------------------------------------------------------------------------------------------------
// Types

#[derive(Debug, Clone)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrimType {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    Bool,
    Char,
    Void,
}

impl PrimType {
    pub fn from_keyword(s: &str) -> Option<PrimType> {
        Some(match s {
            "u8" => PrimType::U8,
            "u16" => PrimType::U16,
            "u32" => PrimType::U32,
            "u64" => PrimType::U64,
            "i8" => PrimType::I8,
            "i16" => PrimType::I16,
            "i32" => PrimType::I32,
            "i64" => PrimType::I64,
            "bool" => PrimType::Bool,
            "char" => PrimType::Char,
            "void" => PrimType::Void,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum TypeExprKind {
    Prim(PrimType),
    Str(u64),
    Named(Ident),
    Array(Box<TypeExpr>, u64),
    Ptr(Box<TypeExpr>),
    Fn {
        params: Vec<TypeExpr>,
        ret: Box<TypeExpr>,
    },
    Map(MapTypeExpr),
}

#[derive(Debug, Clone)]
pub struct MapTypeExpr {
    pub kind: Ident,
    pub args: Vec<TypeExpr>,
    /// `(N)`: `max_entries` (bytes for ring buffers), a constant expression folded by the checker.
    pub size: Option<Box<Expr>>,
    pub span: Span,
}

// ------------------------------------------------------------------------------------------------
// Statements

#[derive(Debug, Clone)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

impl Block {
    /// The closing `}` (where E0405 points).
    pub fn close_span(&self) -> Span {
        Span {
            file: self.span.file,
            lo: self.span.hi.saturating_sub(1),
            hi: self.span.hi,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
}

impl AssignOp {
    /// The binary operator a compound assignment applies.
    pub fn binop(self) -> Option<BinOp> {
        Some(match self {
            AssignOp::Set => return None,
            AssignOp::Add => BinOp::Add,
            AssignOp::Sub => BinOp::Sub,
            AssignOp::Mul => BinOp::Mul,
            AssignOp::Div => BinOp::Div,
            AssignOp::Rem => BinOp::Rem,
            AssignOp::BitAnd => BinOp::BitAnd,
            AssignOp::BitOr => BinOp::BitOr,
            AssignOp::BitXor => BinOp::BitXor,
            AssignOp::Shl => BinOp::Shl,
            AssignOp::Shr => BinOp::Shr,
        })
    }
}

#[derive(Debug, Clone)]
pub enum StmtKind {
    Var {
        name: Ident,
        ty: Option<TypeExpr>,
        init: Option<Expr>,
    },
    Const {
        name: Ident,
        ty: Option<TypeExpr>,
        init: Expr,
    },
    Assign {
        target: Expr,
        op: AssignOp,
        value: Expr,
    },
    Expr(Expr),
    Return(Option<Expr>),
    If {
        cond: IfCond,
        then: Block,
        els: Option<Box<ElseBranch>>,
    },
    While {
        cond: Expr,
        body: Block,
    },
    ForRange {
        var: Ident,
        lo: Expr,
        hi: Expr,
        body: Block,
    },
    ForEach {
        key: Ident,
        value: Ident,
        map: Ident,
        body: Block,
    },
    Delete(Expr),
    Break,
    Continue,
    Try {
        body: Block,
        catches: Vec<Catch>,
    },
    Throw(Expr),
    /// The deferred statement: an expression (a call), or [ksc] an assignment (`count += 1`).
    Defer(Box<Stmt>),
}

#[derive(Debug, Clone)]
pub enum IfCond {
    Expr(Expr),
    Let { name: Ident, init: Expr },
}

#[derive(Debug, Clone)]
pub enum ElseBranch {
    Block(Block),
    If(Box<Stmt>),
}

#[derive(Debug, Clone)]
pub struct Catch {
    pub pattern: CatchPattern,
    pub body: Block,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchPattern {
    Code(u64, Span),
    /// A `const` or an enumerator whose value is the code (`catch Malformed`).
    Named(Ident),
    Wildcard(Span),
}

impl CatchPattern {
    pub fn span(&self) -> Span {
        match self {
            CatchPattern::Code(_, s) | CatchPattern::Wildcard(s) => *s,
            CatchPattern::Named(id) => id.span,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Expressions

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    pub id: ExprId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    BitOr,
    BitXor,
    BitAnd,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub const ALL: [BinOp; 18] = [
        BinOp::Or,
        BinOp::And,
        BinOp::BitOr,
        BinOp::BitXor,
        BinOp::BitAnd,
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Lt,
        BinOp::Le,
        BinOp::Gt,
        BinOp::Ge,
        BinOp::Shl,
        BinOp::Shr,
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Rem,
    ];

    /// The operator spelled `symbol`, the inverse of [`BinOp::symbol`].
    pub fn from_symbol(symbol: &str) -> Option<BinOp> {
        BinOp::ALL.into_iter().find(|op| op.symbol() == symbol)
    }

    /// Binding power per docs/language.md §7.1 (higher binds tighter).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::BitOr => 3,
            BinOp::BitXor => 4,
            BinOp::BitAnd => 5,
            BinOp::Eq | BinOp::Ne => 6,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 7,
            BinOp::Shl | BinOp::Shr => 8,
            BinOp::Add | BinOp::Sub => 9,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 10,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::BitAnd => "&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    /// Operators that only exist as extensions (§4 [ext]).
    pub fn is_extension(self) -> bool {
        matches!(
            self,
            BinOp::BitOr | BinOp::BitXor | BinOp::BitAnd | BinOp::Shl | BinOp::Shr
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    Deref,
    AddrOf,
    BitNot,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Int(u64),
    Bool(bool),
    Char(u8),
    Str(Vec<u8>),
    Null,
    Ident(String),
    ArrayLit(Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cast(Box<Expr>, TypeExpr),
    Call {
        callee: Box<Expr>,
        args: Vec<Expr>,
    },
    Index(Box<Expr>, Box<Expr>),
    Field(Box<Expr>, Ident),
    Arrow(Box<Expr>, Ident),
    StructLit {
        name: Ident,
        fields: Vec<(Ident, Expr)>,
    },
    Match {
        scrutinee: Box<Expr>,
        arms: Vec<MatchArm>,
    },
    New {
        ty: TypeExpr,
        arg: Option<Box<Expr>>,
    },
    SizeofType(TypeExpr),
    SizeofExpr(Box<Expr>),
}

#[derive(Debug, Clone)]
pub struct MatchArm {
    pub pattern: Pattern,
    pub body: ArmBody,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    Int(i128, Span),
    Str(Vec<u8>, Span),
    Char(u8, Span),
    Bool(bool, Span),
    Name(Ident),
    Default(Span),
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Int(_, s)
            | Pattern::Str(_, s)
            | Pattern::Char(_, s)
            | Pattern::Bool(_, s)
            | Pattern::Default(s) => *s,
            Pattern::Name(i) => i.span,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ArmBody {
    Expr(Expr),
    Block(Block),
}

/// The `--emit=ast` form: the derived debug tree, which shows every node and span.
pub fn dump(unit: &Unit) -> String {
    format!("{:#?}\n", unit.items)
}

#[cfg(test)]
mod tests {
    use super::BinOp;

    #[test]
    fn every_operator_round_trips_through_its_symbol() {
        for op in BinOp::ALL {
            assert_eq!(BinOp::from_symbol(op.symbol()), Some(op));
        }
        assert_eq!(BinOp::from_symbol("+="), None);
    }
}
