//! Bounds on what one GraphQL query may ask, checked on the parsed query before it is validated or run: a query
//! is one HTTP request, and without bounds one request could ask for every run's every metric many times over
//! (aliases) or nest without end. The bounds and their wording are MLflow's (`graphql_no_batching.py`), so a
//! query MLflow's server refuses is refused here with the same message, and one it runs is run.

use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};

/// How deep selections may nest (the operation's own selection set is depth 1).
pub const MAX_DEPTH: usize = 10;
/// How many field selections one query may hold in all.
pub const MAX_SELECTIONS: usize = 1000;

/// The bounds a server can change (MLflow's `MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS` and `…_MAX_ALIASES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fields at the top of an operation: each is one API call.
    pub max_root_fields: usize,
    /// Aliased fields within one selection set: aliases are how one query repeats a field.
    pub max_aliases: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_root_fields: 10, max_aliases: 10 }
    }
}

/// Why a query was refused; the text is the GraphQL error's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl Limits {
    /// Checks a parsed query against every bound: nesting and selection count first (as the query is walked),
    /// then root fields, then aliases. Fragments count where they are used: an inline fragment's or a spread
    /// fragment's fields belong to the selection set that holds them (so aliases spread over sibling fragments
    /// add up), and a fragment definition on its own counts for nothing.
    pub fn check(&self, doc: &ExecutableDocument) -> Result<(), Refused> {
        let mut walk = Walk { doc, root_fields: 0, max_aliases: 0, selections: 0 };
        for (_, op) in doc.operations.iter() {
            walk.selection_set(&op.node.selection_set.node, 1, &[])?;
        }
        let over = |what: &str, env: &str, limit: usize, got: usize| {
            Refused(format!(
                "GraphQL queries should have at most {limit} {what}, got {got} {what}. To increase the limit, \
                 set the {env} environment variable."
            ))
        };
        if walk.root_fields > self.max_root_fields {
            return Err(over("root fields", "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS", self.max_root_fields, walk.root_fields));
        }
        if walk.max_aliases > self.max_aliases {
            return Err(over("aliases", "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES", self.max_aliases, walk.max_aliases));
        }
        Ok(())
    }
}

struct Walk<'d> {
    doc: &'d ExecutableDocument,
    root_fields: usize,
    max_aliases: usize,
    selections: usize,
}

impl<'d> Walk<'d> {
    /// The fields a selection set selects, with those of its inline fragments and spread fragments (each named
    /// fragment expanded once per set, so a fragment that spreads itself ends), and how many carry an alias.
    fn fields(&self, set: &'d SelectionSet, expanded: &mut Vec<&'d str>) -> (Vec<&'d Field>, usize) {
        let mut fields = Vec::new();
        let mut aliases = 0;
        let mut pending: Vec<&'d SelectionSet> = vec![set];
        while let Some(set) = pending.pop() {
            for item in &set.items {
                match &item.node {
                    Selection::Field(field) => {
                        aliases += usize::from(field.node.alias.is_some());
                        fields.push(&field.node);
                    }
                    Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set.node),
                    Selection::FragmentSpread(spread) => {
                        let name = spread.node.fragment_name.node.as_str();
                        if expanded.contains(&name) {
                            continue;
                        }
                        expanded.push(name);
                        if let Some(fragment) = self.doc.fragments.get(&spread.node.fragment_name.node) {
                            pending.push(&fragment.node.selection_set.node);
                        }
                    }
                }
            }
        }
        (fields, aliases)
    }

    /// `outer`: the fragments expanded on the way to this set (a fragment is not expanded inside itself).
    fn selection_set(&mut self, set: &'d SelectionSet, depth: usize, outer: &[&'d str]) -> Result<(), Refused> {
        if depth > MAX_DEPTH {
            return Err(Refused(format!("Query exceeds maximum depth of {MAX_DEPTH}")));
        }
        let mut expanded = outer.to_vec();
        let (fields, aliases) = self.fields(set, &mut expanded);
        self.max_aliases = self.max_aliases.max(aliases);
        for field in fields {
            self.selections += 1;
            if self.selections > MAX_SELECTIONS {
                return Err(Refused(format!("Query exceeds maximum total selections of {MAX_SELECTIONS}")));
            }
            if depth == 1 {
                self.root_fields += 1;
            }
            if !field.selection_set.node.items.is_empty() {
                self.selection_set(&field.selection_set.node, depth + 1, &expanded)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn check(query: &str) -> Result<(), Refused> {
        Limits::default().check(&parse_query(query).unwrap())
    }

    #[test]
    fn a_query_within_bounds_passes() {
        assert_eq!(check("{ a { b { c } } d: a { b } }"), Ok(()));
    }

    #[test]
    fn eleven_root_fields_are_refused_with_the_variable_to_raise() {
        let query = format!("{{ {} }}", (0..11).map(|i| format!("f{i}: test {{ output }}")).collect::<Vec<_>>().join(" "));
        let err = check(&query).unwrap_err().0;
        assert!(err.starts_with("GraphQL queries should have at most 10 root fields, got 11 root fields"), "{err}");
        assert!(err.contains("MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS"));
    }

    #[test]
    fn aliases_are_counted_per_selection_set() {
        let many = (0..11).map(|i| format!("e{i}: experiment {{ name }}")).collect::<Vec<_>>().join(" ");
        let err = check(&format!("{{ q {{ {many} }} }}")).unwrap_err().0;
        assert!(err.contains("at most 10 aliases, got 11 aliases"), "{err}");
        // Ten aliases in each of two sets is within bounds.
        let ten = (0..10).map(|i| format!("e{i}: x")).collect::<Vec<_>>().join(" ");
        assert_eq!(check(&format!("{{ a {{ {ten} }} b {{ {ten} }} }}")), Ok(()));
    }

    #[test]
    fn nesting_past_ten_is_refused() {
        let mut inner = "name".to_string();
        for _ in 0..12 {
            inner = format!("name {{ {inner} }}");
        }
        assert_eq!(check(&format!("{{ {inner} }}")), Err(Refused("Query exceeds maximum depth of 10".into())));
        let mut ten = "x".to_string();
        for _ in 0..9 {
            ten = format!("x {{ {ten} }}");
        }
        assert_eq!(check(&format!("{{ {ten} }}")), Ok(()));
    }

    #[test]
    fn aliases_spread_over_sibling_fragments_add_up() {
        let part = |p: &str| (0..6).map(|i| format!("{p}{i}: modelVersions {{ name }}")).collect::<Vec<_>>().join(" ");
        let inline = format!("{{ q {{ ... on R {{ {} }} ... on R {{ {} }} }} }}", part("a"), part("b"));
        assert!(check(&inline).unwrap_err().0.contains("at most 10 aliases, got 12 aliases"));
        let spread = format!("{{ q {{ ...A ...B }} }} fragment A on R {{ {} }} fragment B on R {{ {} }}", part("a"), part("b"));
        assert!(check(&spread).unwrap_err().0.contains("got 12 aliases"));
    }

    #[test]
    fn a_fragment_counts_where_it_is_used_and_cycles_end() {
        // Ten fields in a fragment used below the root are not root fields.
        let fields = (0..10).map(|i| format!("f{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(check(&format!("{{ run {{ ...F }} }} fragment F on R {{ {fields} }}")), Ok(()));
        // A fragment spread at the root brings its fields to the root.
        let err = check(&format!("{{ a ...F }} fragment F on Query {{ {fields} }}")).unwrap_err().0;
        assert!(err.contains("got 11 root fields"), "{err}");
        // Nesting through a spread counts; a fragment that spreads itself stops.
        let mut inner = "x".to_string();
        for _ in 0..11 {
            inner = format!("x {{ {inner} }}");
        }
        let err = check(&format!("{{ ...F }} fragment F on Query {{ {inner} }}")).unwrap_err().0;
        assert_eq!(err, "Query exceeds maximum depth of 10");
        assert_eq!(check("{ a { ...F } } fragment F on A { b { ...F } }"), Ok(()));
    }

    #[test]
    fn more_than_a_thousand_selections_are_refused_even_inside_inline_fragments() {
        let fields = (0..1001).map(|i| format!("f{i}")).collect::<Vec<_>>().join(" ");
        let err = check(&format!("{{ a {{ ... on A {{ {fields} }} }} }}")).unwrap_err().0;
        assert_eq!(err, "Query exceeds maximum total selections of 1000");
    }
}
