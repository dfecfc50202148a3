//! Thin wrappers over the OS facilities the scheduler needs, one file each.

pub(crate) mod futex;
