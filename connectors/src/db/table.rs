//! What a database table looks like to a connector: its columns with their SQL and Arrow
//! types, and its primary key; and the checks a sink or source makes against it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// One column of a table, as the database's catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type as the catalog spells it (for messages).
    pub sql_type: String,
    /// The Arrow type it maps to; `None` when Sluice has no mapping (a JSON column...).
    pub arrow: Option<DataType>,
    /// Whether it accepts NULL.
    pub nullable: bool,
}

/// A table's columns (in table order) and primary key (in key order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableInfo {
    /// The columns; empty when the table does not exist.
    pub columns: Vec<Column>,
    /// The primary key's columns.
    pub primary_key: Vec<String>,
}

impl TableInfo {
    /// Whether the table exists (a table has at least one column).
    pub fn exists(&self) -> bool {
        !self.columns.is_empty()
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Problems with writing rows of `schema` into the table: every missing column at
    /// once, and every column whose type Sluice cannot write.
    pub fn sink_problems(&self, table: &str, schema: &Schema) -> Vec<String> {
        if !self.exists() {
            return vec![format!(
                "table `{table}` does not exist: create it, or set create_table = true"
            )];
        }
        let mut problems = Vec::new();
        let missing: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|name| self.column(name).is_none())
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "table `{table}` has no column{} {}: add {} or drop the field{} with a transform",
                if missing.len() > 1 { "s" } else { "" },
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing.len() > 1 { "them" } else { "it" },
                if missing.len() > 1 { "s" } else { "" },
            ));
        }
        for field in schema.fields() {
            if let Some(column) = self.column(field.name())
                && column.arrow.is_none()
            {
                problems.push(unmapped(table, column));
            }
        }
        problems
    }

    /// The Arrow schema of the table's readable columns, for a source: every column must
    /// map (an error names each one that does not).
    pub fn source_schema(&self, table: &str) -> Result<SchemaRef, Vec<String>> {
        let mut fields = Vec::new();
        let mut problems = Vec::new();
        for column in &self.columns {
            match &column.arrow {
                Some(ty) => fields.push(Field::new(&column.name, ty.clone(), column.nullable)),
                None => problems.push(unmapped(table, column)),
            }
        }
        if problems.is_empty() {
            Ok(Arc::new(Schema::new(fields)))
        } else {
            Err(problems)
        }
    }
}

fn unmapped(table: &str, column: &Column) -> String {
    format!(
        "column `{}` of `{table}` has type {}, which Sluice cannot map: use BOOLEAN, SMALLINT, \
         INT, BIGINT, REAL, DOUBLE, DECIMAL(p,s), VARCHAR/TEXT, BYTEA/BLOB, DATE, TIMESTAMP or \
         TIMESTAMPTZ (a view with casts works for a source)",
        column.name, column.sql_type
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_schema;

    #[test]
    fn sink_problems_list_every_missing_column_at_once() {
        // Proves a sink check names all missing columns in one message and unmapped types.
        let table = TableInfo {
            columns: vec![
                Column {
                    name: "id".into(),
                    sql_type: "bigint".into(),
                    arrow: Some(DataType::Int64),
                    nullable: false,
                },
                Column {
                    name: "doc".into(),
                    sql_type: "jsonb".into(),
                    arrow: None,
                    nullable: true,
                },
            ],
            primary_key: vec!["id".into()],
        };
        let schema = parse_schema("id BIGINT, doc VARCHAR, a INT, b INT").unwrap();
        let problems = table.sink_problems("t", &schema);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`a`, `b`"), "{problems:?}");
        assert!(problems[1].contains("jsonb"), "{problems:?}");
        assert!(TableInfo::default().sink_problems("t", &schema)[0].contains("does not exist"));
    }
}
