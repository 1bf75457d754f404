//! Recursive descent over the tokens: `or` < `xor` < `and` < `not` < comparison < postfix.

use super::ast::{CmpOp, Expr, ExprKind, Index, Logic, SetExpr, SetItem};
use super::lexer::{lex, Tok};
use super::span::Span;
use super::ErrorKind;

/// Nesting deeper than this is refused (a hostile file must not overflow the stack).
const MAX_DEPTH: usize = 64;

pub fn parse(src: &str) -> Result<Expr, (ErrorKind, Span)> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    let (t, span) = p.peek();
    if *t != Tok::Eof {
        return Err((
            ErrorKind::Expected {
                expected: "an operator or the end",
                found: t.describe(),
            },
            span,
        ));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
}

fn node(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

/// `a op b op c ...` as a balanced tree (`and`, `or` and `xor` are associative, and the operands
/// keep their order), so a chain of n operands nests log2(n) levels, not n: the checker, both
/// evaluators and the lowering recurse on the depth, and a long chain overflowed the stack.
fn balanced(op: Logic, mut operands: Vec<Expr>) -> Expr {
    if operands.len() == 1 {
        return operands.pop().expect("one operand");
    }
    let right = operands.split_off(operands.len() / 2);
    let (lhs, rhs) = (balanced(op, operands), balanced(op, right));
    let span = lhs.span.to(rhs.span);
    node(
        ExprKind::Logic {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    )
}

impl Parser {
    fn peek(&self) -> (&Tok, Span) {
        let (t, s) = &self.toks[self.pos.min(self.toks.len() - 1)];
        (t, *s)
    }

    fn bump(&mut self) -> (Tok, Span) {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek().0 == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, expected: &'static str) -> Result<Span, (ErrorKind, Span)> {
        let (found, span) = self.peek();
        if *found == t {
            Ok(self.bump().1)
        } else {
            Err((
                ErrorKind::Expected {
                    expected,
                    found: found.describe(),
                },
                span,
            ))
        }
    }

    fn deeper(&mut self, span: Span) -> Result<(), (ErrorKind, Span)> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((ErrorKind::TooDeep { max: MAX_DEPTH }, span));
        }
        Ok(())
    }

    fn logic(
        &mut self,
        op: Logic,
        tok: Tok,
        next: fn(&mut Parser) -> Result<Expr, (ErrorKind, Span)>,
    ) -> Result<Expr, (ErrorKind, Span)> {
        let mut operands = vec![next(self)?];
        while self.eat(&tok) {
            operands.push(next(self)?);
        }
        Ok(balanced(op, operands))
    }

    fn or(&mut self) -> Result<Expr, (ErrorKind, Span)> {
        self.logic(Logic::Or, Tok::Or, Parser::xor)
    }

    fn xor(&mut self) -> Result<Expr, (ErrorKind, Span)> {
        self.logic(Logic::Xor, Tok::Xor, Parser::and)
    }

    fn and(&mut self) -> Result<Expr, (ErrorKind, Span)> {
        self.logic(Logic::And, Tok::And, Parser::not)
    }

    fn not(&mut self) -> Result<Expr, (ErrorKind, Span)> {
        let (t, span) = self.peek();
        if *t == Tok::Not {
            self.bump();
            self.deeper(span)?;
            let inner = self.not()?;
            self.depth -= 1;
            let s = span.to(inner.span);
            return Ok(node(ExprKind::Not(Box::new(inner)), s));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, (ErrorKind, Span)> {
        let lhs = self.postfix()?;
        let op = match self.peek().0 {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Contains => CmpOp::Contains,
            Tok::Matches => CmpOp::Matches,
            Tok::Wildcard => CmpOp::Wildcard,
            Tok::StrictWildcard => CmpOp::StrictWildcard,
            Tok::In => {
                self.bump();
                return self.in_set(lhs);
            }
            _ => return Ok(lhs),
        };
        self.bump();
        let rhs = self.postfix()?;
        let span = lhs.span.to(rhs.span);
        Ok(node(
            ExprKind::Compare {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        ))
    }

    fn in_set(&mut self, lhs: Expr) -> Result<Expr, (ErrorKind, Span)> {
        let (t, span) = self.bump();
        let (set, end) = match t {
            Tok::List(name) => (SetExpr::List(name, span), span),
            Tok::LBrace => {
                let mut items = Vec::new();
                loop {
                    let (t, s) = self.peek();
                    if *t == Tok::RBrace {
                        break;
                    }
                    if *t == Tok::Comma {
                        self.bump();
                        continue;
                    }
                    let item = self.primary()?;
                    if self.eat(&Tok::DotDot) {
                        let (hi, hs) = self.bump();
                        match (&item.kind, hi) {
                            (ExprKind::Int(lo), Tok::Int(hi)) => {
                                items.push(SetItem::Range(*lo, hi, s.to(hs)))
                            }
                            (_, t) => {
                                return Err((
                                    ErrorKind::Expected {
                                        expected: "an integer range `lo..hi`",
                                        found: t.describe(),
                                    },
                                    s.to(hs),
                                ))
                            }
                        }
                    } else {
                        items.push(SetItem::Value(item));
                    }
                }
                let close = self.expect(Tok::RBrace, "`}`")?;
                (SetExpr::Items(items), close)
            }
            other => {
                return Err((
                    ErrorKind::Expected {
                        expected: "`{` or `$list` after `in`",
                        found: other.describe(),
                    },
                    span,
                ))
            }
        };
        let s = lhs.span.to(end);
        Ok(node(
            ExprKind::In {
                lhs: Box::new(lhs),
                set,
            },
            s,
        ))
    }

    fn postfix(&mut self) -> Result<Expr, (ErrorKind, Span)> {
        let mut e = self.primary()?;
        // Each index or slice nests the tree one level: they count toward the depth limit.
        let mut levels = 0;
        while self.peek().0 == &Tok::LBracket {
            let open = self.bump().1;
            self.deeper(open)?;
            levels += 1;
            let (t, s) = self.bump();
            // The base moves into the new node (it was copied, making long chains quadratic).
            let base_span = e.span;
            let base = Box::new(e);
            let kind = match t {
                Tok::Star => ExprKind::Index {
                    base,
                    index: Index::All,
                },
                Tok::Str(k) => ExprKind::Index {
                    base,
                    index: Index::Key(k),
                },
                Tok::Int(a) if self.eat(&Tok::Colon) => {
                    let (t2, s2) = self.bump();
                    let Tok::Int(b) = t2 else {
                        return Err((
                            ErrorKind::Expected {
                                expected: "the end of a slice `[a:b]`",
                                found: t2.describe(),
                            },
                            s2,
                        ));
                    };
                    ExprKind::Slice {
                        base,
                        start: a,
                        end: b,
                    }
                }
                Tok::Int(i) => ExprKind::Index {
                    base,
                    index: Index::Int(i),
                },
                other => {
                    return Err((
                        ErrorKind::Expected {
                            expected: "`*`, an index, a key or a slice",
                            found: other.describe(),
                        },
                        s,
                    ))
                }
            };
            let close = self.expect(Tok::RBracket, "`]`")?;
            e = node(kind, base_span.to(open).to(close));
        }
        self.depth -= levels;
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, (ErrorKind, Span)> {
        let (t, span) = self.bump();
        Ok(match t {
            Tok::Int(i) => node(ExprKind::Int(i), span),
            Tok::Str(s) => node(ExprKind::Bytes(s), span),
            Tok::Addr(a) => node(ExprKind::Addr(a), span),
            Tok::Ident(w) if w == "true" || w == "false" => node(ExprKind::Bool(w == "true"), span),
            Tok::Ident(name) => {
                if self.eat(&Tok::LParen) {
                    self.deeper(span)?;
                    let mut args = Vec::new();
                    if !self.eat(&Tok::RParen) {
                        loop {
                            args.push(self.or()?);
                            if self.eat(&Tok::Comma) {
                                continue;
                            }
                            self.expect(Tok::RParen, "`,` or `)`")?;
                            break;
                        }
                    }
                    self.depth -= 1;
                    let end = self.toks[self.pos.saturating_sub(1)].1;
                    node(ExprKind::Call { name, args }, span.to(end))
                } else {
                    node(ExprKind::Field(name), span)
                }
            }
            Tok::LParen => {
                self.deeper(span)?;
                let mut inner = self.or()?;
                self.depth -= 1;
                let close = self.expect(Tok::RParen, "`)`")?;
                inner.span = span.to(close);
                inner
            }
            other => {
                return Err((
                    ErrorKind::Expected {
                        expected: "a field, a value, a function or `(`",
                        found: other.describe(),
                    },
                    span,
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_not_and_or() {
        let e = parse("not a and b or c").unwrap();
        let ExprKind::Logic {
            op: Logic::Or, lhs, ..
        } = e.kind
        else {
            panic!("or at the top: {e:?}")
        };
        let ExprKind::Logic {
            op: Logic::And,
            lhs: inner,
            ..
        } = lhs.kind
        else {
            panic!("and under or")
        };
        assert!(matches!(inner.kind, ExprKind::Not(_)));
    }

    #[test]
    fn calls_indexes_slices_and_sets() {
        let e = parse(r#"any(lower(http.request.headers["x"][*]) contains "y") and payload[0:4] eq "GET " and x in $list and y in {1 3..5}"#).unwrap();
        let s = format!("{e:?}");
        assert!(s.contains("Slice") && s.contains("List(\"list\"") && s.contains("Range(3, 5"));
    }

    #[test]
    fn errors_say_what_was_expected() {
        let (k, span) = parse("tcp.dstport eq").unwrap_err();
        assert_eq!(
            k.to_string(),
            "expected a field, a value, a function or `(`, found the end of the expression"
        );
        assert_eq!(span, Span::new(14, 14));
        assert!(matches!(
            parse("(a and b").unwrap_err().0,
            ErrorKind::Expected {
                expected: "`)`",
                ..
            }
        ));
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(
            parse(&deep).unwrap_err().0,
            ErrorKind::TooDeep { .. }
        ));
        assert!(matches!(
            parse("a b").unwrap_err().0,
            ErrorKind::Expected {
                expected: "an operator or the end",
                ..
            }
        ));
    }
}
