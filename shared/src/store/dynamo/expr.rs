//! Builds DynamoDB condition and update expressions from [`Condition`] and [`Update`].
//!
//! Every attribute name is aliased (`#n0`, `#n1`, …) and every value is a placeholder (`:v0`, …),
//! so reserved words such as `state`, `total` or `ttl` are safe as attribute names. Conditions are
//! simplified before rendering (`Always` inside `And`, empty `Or`, …) so no placeholder is ever
//! left unused, which DynamoDB would reject.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::{EXPIRES_AT, PK, encode_value};
use crate::store::update::NOOP_ATTR;
use crate::store::{AttrValue, CmpOp, Condition, Update};

/// Names and values collected while rendering the expressions of one request.
#[derive(Debug, Default)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    aliases: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// A condition after constant folding; leaves are rendered later, so a pruned branch registers no
/// placeholder.
enum Node<'a> {
    Const(bool),
    Leaf(&'a Condition),
    All(Vec<Node<'a>>),
    Any(Vec<Node<'a>>),
}

fn simplify(condition: &Condition) -> Node<'_> {
    match condition {
        Condition::Always => Node::Const(true),
        Condition::And(all) => fold(all, true),
        Condition::Or(any) => fold(any, false),
        leaf => Node::Leaf(leaf),
    }
}

/// Folds `And` (`identity = true`) or `Or` (`identity = false`) children.
fn fold(children: &[Condition], identity: bool) -> Node<'_> {
    let mut kept = Vec::new();
    for child in children.iter().map(simplify) {
        match child {
            Node::Const(c) if c == identity => {}
            Node::Const(c) => return Node::Const(c),
            node => kept.push(node),
        }
    }
    match kept.len() {
        0 => Node::Const(identity),
        1 => kept.pop().unwrap_or(Node::Const(identity)),
        _ if identity => Node::All(kept),
        _ => Node::Any(kept),
    }
}

fn operator(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

fn type_code(value: &AttrValue) -> &'static str {
    match value {
        AttrValue::S(_) => "S",
        AttrValue::N(_) => "N",
    }
}

impl Expr {
    /// The alias of an attribute name (one alias per distinct name).
    pub(crate) fn name(&mut self, name: &str) -> String {
        if let Some(alias) = self.aliases.get(name) {
            return alias.clone();
        }
        let alias = format!("#n{}", self.aliases.len());
        self.aliases.insert(name.to_owned(), alias.clone());
        self.names.insert(alias.clone(), name.to_owned());
        alias
    }

    /// A fresh placeholder for a value.
    pub(crate) fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// The `ConditionExpression` for `condition` (`None` when it always holds), judging expiry at
    /// `now_secs`.
    pub(crate) fn condition(&mut self, condition: &Condition, now_secs: i64) -> Option<String> {
        match simplify(condition) {
            Node::Const(true) => None,
            // A condition that can never hold still has to reach DynamoDB, so that the caller
            // gets `ConditionFailed` with the current item like for any other failed condition.
            Node::Const(false) => {
                let pk = self.name(PK);
                Some(format!("attribute_exists({pk}) AND attribute_not_exists({pk})"))
            }
            node => Some(self.render(&node, now_secs)),
        }
    }

    fn render(&mut self, node: &Node<'_>, now_secs: i64) -> String {
        match node {
            Node::Const(_) => String::new(), // removed by `simplify` below the root
            Node::All(all) => self.join(all, " AND ", now_secs),
            Node::Any(any) => self.join(any, " OR ", now_secs),
            Node::Leaf(leaf) => self.leaf(leaf, now_secs),
        }
    }

    fn join(&mut self, nodes: &[Node<'_>], separator: &str, now_secs: i64) -> String {
        let parts: Vec<String> = nodes.iter().map(|n| self.render(n, now_secs)).collect();
        format!("({})", parts.join(separator))
    }

    fn leaf(&mut self, condition: &Condition, now_secs: i64) -> String {
        match condition {
            Condition::ItemAbsent => {
                let (pk, exp) = (self.name(PK), self.name(EXPIRES_AT));
                let now = self.value(AttributeValue::N(now_secs.to_string()));
                format!("(attribute_not_exists({pk}) OR {exp} <= {now})")
            }
            Condition::ItemPresent => {
                let (pk, exp) = (self.name(PK), self.name(EXPIRES_AT));
                let now = self.value(AttributeValue::N(now_secs.to_string()));
                format!("(attribute_exists({pk}) AND (attribute_not_exists({exp}) OR {exp} > {now}))")
            }
            Condition::AttrAbsent(name) => format!("attribute_not_exists({})", self.name(name)),
            Condition::Compare(name, op, value) => {
                // `attribute_type` first: a missing attribute or a type mismatch is false for
                // every operator (`<>` included), as in the in-memory store, and the emulator
                // never has to compare a string with a number.
                let alias = self.name(name);
                let ty = self.value(AttributeValue::S(type_code(value).to_owned()));
                let v = self.value(encode_value(value));
                format!("(attribute_type({alias}, {ty}) AND {alias} {} {v})", operator(*op))
            }
            Condition::Always | Condition::And(_) | Condition::Or(_) => String::new(), // not leaves
        }
    }

    /// The `UpdateExpression` for `update`; an empty update becomes `REMOVE` of the reserved
    /// [`NOOP_ATTR`], which changes nothing but still creates a missing item.
    pub(crate) fn update(&mut self, update: &Update) -> String {
        let mut set = Vec::new();
        for (name, value) in &update.set {
            let (alias, v) = (self.name(name), self.value(encode_value(value)));
            set.push(format!("{alias} = {v}"));
        }
        for (name, value) in &update.set_if_absent {
            let (alias, v) = (self.name(name), self.value(encode_value(value)));
            set.push(format!("{alias} = if_not_exists({alias}, {v})"));
        }
        let mut add = Vec::new();
        for (name, delta) in &update.add {
            let (alias, v) = (self.name(name), self.value(AttributeValue::N(delta.to_string())));
            add.push(format!("{alias} {v}"));
        }
        let remove: Vec<String> = update.remove.iter().map(|name| self.name(name)).collect();
        let clauses: Vec<String> = [
            ("SET", set.join(", ")),
            ("ADD", add.join(", ")),
            ("REMOVE", remove.join(", ")),
        ]
        .into_iter()
        .filter(|(_, body)| !body.is_empty())
        .map(|(verb, body)| format!("{verb} {body}"))
        .collect();
        if clauses.is_empty() {
            return format!("REMOVE {}", self.name(NOOP_ATTR));
        }
        clauses.join(" ")
    }

    /// The collected names, `None` when empty (DynamoDB rejects an empty map).
    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// The collected values, `None` when empty (DynamoDB rejects an empty map).
    pub(crate) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_renders_no_condition_and_no_placeholders() {
        let mut expr = Expr::default();
        assert_eq!(expr.condition(&Condition::Always, 10), None);
        assert_eq!(expr.condition(&Condition::And(vec![Condition::Always]), 10), None);
        assert_eq!((expr.names(), expr.values()), (None, None));
    }

    #[test]
    fn item_absent_aliases_key_and_ttl() {
        let mut expr = Expr::default();
        let rendered = expr.condition(&Condition::ItemAbsent, 42);
        assert_eq!(rendered.as_deref(), Some("(attribute_not_exists(#n0) OR #n1 <= :v0)"));
        let names = expr.names().unwrap_or_default();
        assert_eq!((names["#n0"].as_str(), names["#n1"].as_str()), ("pk", "expires_at"));
        assert_eq!(expr.values().unwrap_or_default()[":v0"], AttributeValue::N("42".into()));
    }

    #[test]
    fn reserved_words_are_aliased_and_names_reused() {
        let mut expr = Expr::default();
        let cond = Condition::equals("state", "open").and(Condition::compare("total", CmpOp::Lt, 5));
        let rendered = expr.condition(&cond, 0).unwrap_or_default();
        assert!(!rendered.contains("state") && !rendered.contains("total"), "{rendered}");
        let update = Update::new().set("state", "closed").add("total", 1).remove("ttl");
        let rendered = expr.update(&update);
        assert_eq!(rendered, "SET #n0 = :v4 ADD #n1 :v5 REMOVE #n2");
        assert_eq!(expr.names().map(|n| n.len()), Some(3));
    }

    #[test]
    fn pruned_branches_leave_no_unused_placeholders() {
        let mut expr = Expr::default();
        let cond = Condition::Or(vec![Condition::equals("a", 1), Condition::Always]);
        assert_eq!(expr.condition(&cond, 0), None);
        assert_eq!((expr.names(), expr.values()), (None, None));
        let never = Condition::And(vec![Condition::equals("a", 1), Condition::Or(vec![])]);
        let rendered = expr.condition(&never, 0).unwrap_or_default();
        assert_eq!(rendered, "attribute_exists(#n0) AND attribute_not_exists(#n0)");
        assert_eq!(expr.values(), None);
    }

    #[test]
    fn update_renders_every_clause_in_order() {
        let mut expr = Expr::default();
        let update = Update::new()
            .set("a", "x")
            .set_if_absent("b", 2)
            .add("c", -1)
            .remove("d")
            .remove("e");
        assert_eq!(
            expr.update(&update),
            "SET #n0 = :v0, #n1 = if_not_exists(#n1, :v1) ADD #n2 :v2 REMOVE #n3, #n4"
        );
        assert_eq!(Expr::default().update(&Update::new()), "REMOVE #n0");
    }
}
