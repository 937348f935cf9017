//! Workspace-level examples and behaviour tests of cachemacro.
