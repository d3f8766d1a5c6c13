//! Who may do what: the four workspace roles, their permissions, and the one function every
//! endpoint asks ("may this user do this in this workspace?").
//!
//! The caller's role comes from the same query that loads the resource (a join on `members`), so
//! the answer is always read inside the transaction that acts on it.

use crate::error::{Error, Result};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub pk: i64,
    pub id: String,
    pub email: String,
    pub tenant_admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Integrator,
    Guest,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Integrator, Role::Guest];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Integrator => "integrator",
            Role::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The spec's role table (section 4).
    pub fn allows(self, perm: Perm) -> bool {
        match perm {
            Perm::Read => true,
            Perm::WorkspaceEdit | Perm::AuditRead => matches!(self, Role::Owner | Role::Admin),
            Perm::FlowEdit | Perm::FlowToggle => !matches!(self, Role::Guest),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Membership: read the workspace and everything in it.
    Read,
    WorkspaceEdit,
    FlowEdit,
    FlowToggle,
    /// Read the workspace's audit log: the roles with `workspaces.workspace.edit`, and every
    /// tenant-admin (section 10).
    AuditRead,
}

impl Perm {
    pub fn name(self) -> &'static str {
        match self {
            Perm::Read => "workspace membership",
            Perm::WorkspaceEdit => "workspaces.workspace.edit",
            Perm::FlowEdit => "workspaces.flow.edit",
            Perm::FlowToggle => "workspaces.flow.toggleStatus",
            Perm::AuditRead => "workspaces.workspace.edit (needed to read the audit log)",
        }
    }
}

/// The one answer to "may `who`, whose role in workspace `workspace_id` is `role`, do `perm`?".
/// A tenant-admin may read every workspace but needs a role to change anything.
pub fn require(who: &Principal, role: Option<Role>, perm: Perm, workspace_id: &str) -> Result<()> {
    require_as(who.tenant_admin, role, perm, workspace_id)
}

/// `require` for a caller known only by whether it is a tenant-admin (the snapshot paths read
/// just that along with the flow, see `db::snapshots::lookup`).
pub fn require_as(
    tenant_admin: bool,
    role: Option<Role>,
    perm: Perm,
    workspace_id: &str,
) -> Result<()> {
    // What a tenant-admin may do in any workspace, whatever its role there.
    if tenant_admin && matches!(perm, Perm::Read | Perm::AuditRead) {
        return Ok(());
    }
    match role {
        Some(r) if r.allows(perm) => Ok(()),
        Some(r) => Err(Error::forbidden(format!(
            "Your role `{}` in workspace {workspace_id} does not grant {}; ask an owner or admin \
             of the workspace for a role that does",
            r.as_str(),
            perm.name()
        ))),
        // Names no workspace: a caller asking for a flow by id must not learn which workspace
        // holds it (tenant isolation).
        None => Err(Error::forbidden(
            "You are not a member of the workspace this resource belongs to; ask one of its \
             owners to add you",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(admin: bool) -> Principal {
        Principal {
            pk: 1,
            id: "a".into(),
            email: "a@b".into(),
            tenant_admin: admin,
        }
    }

    #[test]
    fn role_table_matches_the_spec() {
        let table = [
            (Role::Owner, [true, true, true]),
            (Role::Admin, [true, true, true]),
            (Role::Integrator, [false, true, true]),
            (Role::Guest, [false, false, false]),
        ];
        for (role, [ws, flow, toggle]) in table {
            assert!(role.allows(Perm::Read));
            assert_eq!(role.allows(Perm::WorkspaceEdit), ws, "{role:?}");
            assert_eq!(role.allows(Perm::FlowEdit), flow, "{role:?}");
            assert_eq!(role.allows(Perm::FlowToggle), toggle, "{role:?}");
        }
    }

    #[test]
    fn tenant_admin_reads_but_does_not_write_without_a_role() {
        assert!(require(&who(true), None, Perm::Read, "w").is_ok());
        assert!(require(&who(true), None, Perm::FlowEdit, "w").is_err());
        assert!(require(&who(false), None, Perm::Read, "w").is_err());
        assert!(require(&who(false), Some(Role::Guest), Perm::Read, "w").is_ok());
    }
}
