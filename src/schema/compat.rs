//! A wire/source breaking-change gate for the normalized schemas, in the spirit of
//! `buf breaking`: compares a baseline `FileDescriptorSet` with the current one.

use std::collections::HashMap;

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

/// One breaking difference between a baseline and the current schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaking {
    /// Fully qualified element, e.g. `tickflow.normalized.v2beta1.Trade.price`.
    pub element: String,
    /// What changed.
    pub change: String,
}

impl std::fmt::Display for Breaking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.element, self.change)
    }
}

/// Decodes a serialized `FileDescriptorSet`.
pub fn decode_set(bytes: &[u8]) -> Result<FileDescriptorSet, prost::DecodeError> {
    FileDescriptorSet::decode(bytes)
}

fn collect<'a>(
    prefix: &str,
    msgs: &'a [DescriptorProto],
    enums: &'a [EnumDescriptorProto],
    out_m: &mut HashMap<String, &'a DescriptorProto>,
    out_e: &mut HashMap<String, &'a EnumDescriptorProto>,
) {
    for e in enums {
        out_e.insert(format!("{prefix}.{}", e.name()), e);
    }
    for m in msgs {
        let name = format!("{prefix}.{}", m.name());
        collect(&name, &m.nested_type, &m.enum_type, out_m, out_e);
        out_m.insert(name, m);
    }
}

type Index<'a> = (
    HashMap<String, &'a DescriptorProto>,
    HashMap<String, &'a EnumDescriptorProto>,
);

fn index(set: &FileDescriptorSet) -> Index<'_> {
    let (mut m, mut e) = (HashMap::new(), HashMap::new());
    for f in &set.file {
        collect(f.package(), &f.message_type, &f.enum_type, &mut m, &mut e);
    }
    (m, e)
}

fn reserved(msg: &DescriptorProto, number: i32) -> bool {
    msg.reserved_range
        .iter()
        .any(|r| r.start() <= number && number < r.end())
}

/// Lists every breaking change from `baseline` to `current` (empty = compatible).
///
/// Breaking: a message or enum removed; a field removed without reserving its number;
/// a field renumbered, renamed, or with its type, type name, label or presence changed;
/// an enum value removed or renumbered. Adding messages, fields and enum values is not.
pub fn breaking_changes(
    baseline: &FileDescriptorSet,
    current: &FileDescriptorSet,
) -> Vec<Breaking> {
    let (old_m, old_e) = index(baseline);
    let (new_m, new_e) = index(current);
    let mut out = Vec::new();
    let mut push = |element: String, change: String| out.push(Breaking { element, change });

    let mut names: Vec<_> = old_m.keys().collect();
    names.sort();
    for name in names {
        let old = old_m[name];
        let Some(new) = new_m.get(name) else {
            push(name.clone(), "message removed".into());
            continue;
        };
        for f in &old.field {
            let el = format!("{name}.{}", f.name());
            match new.field.iter().find(|n| n.number() == f.number()) {
                None => {
                    if let Some(moved) = new.field.iter().find(|n| n.name() == f.name()) {
                        push(
                            el,
                            format!("renumbered {} -> {}", f.number(), moved.number()),
                        );
                    } else if !reserved(new, f.number()) {
                        push(
                            el,
                            format!("field {} removed without reserving it", f.number()),
                        );
                    }
                }
                Some(n) => {
                    if n.name() != f.name() {
                        push(el.clone(), format!("renamed to {}", n.name()));
                    }
                    if n.r#type() != f.r#type() || n.type_name() != f.type_name() {
                        push(
                            el.clone(),
                            format!(
                                "type changed {:?}{} -> {:?}{}",
                                f.r#type(),
                                f.type_name(),
                                n.r#type(),
                                n.type_name()
                            ),
                        );
                    }
                    if n.label() != f.label() {
                        push(
                            el.clone(),
                            format!("label changed {:?} -> {:?}", f.label(), n.label()),
                        );
                    }
                    if n.proto3_optional() != f.proto3_optional() {
                        push(el, "presence (optional) changed".into());
                    }
                }
            }
        }
    }

    let mut names: Vec<_> = old_e.keys().collect();
    names.sort();
    for name in names {
        let Some(new) = new_e.get(name) else {
            push(name.clone(), "enum removed".into());
            continue;
        };
        for v in &old_e[name].value {
            match new.value.iter().find(|n| n.name() == v.name()) {
                None => push(format!("{name}.{}", v.name()), "enum value removed".into()),
                Some(n) if n.number() != v.number() => push(
                    format!("{name}.{}", v.name()),
                    format!("renumbered {} -> {}", v.number(), n.number()),
                ),
                Some(_) => {}
            }
        }
    }
    out
}
