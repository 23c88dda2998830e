"""Pure domain model: vocabulary, entities' rules, the routing engine. Stdlib only, no I/O."""
