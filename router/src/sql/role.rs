//! Roles: CREATE ROLE, ALTER ROLE (and ALTER USER), DROP ROLE, bound into catalog requests.
//! A password given in clear becomes its verifiers here (`tessera_types::auth`), so it never
//! leaves the router. Only a superuser changes roles, except that a role may change its own
//! password. A role is a superuser or not: finer privileges (CREATEDB, GRANT) do not exist yet.

use sqlparser::ast;
use tessera_types::auth::RolePassword;
use tessera_types::rpc::{DdlRequest, RoleChange};
use tessera_types::schema::Role;
use tessera_types::ExecError;

use crate::error::{Error, Result};
use crate::sql::expr::Ctx;
use crate::sql::names::{ident, object_parts};

fn denied(what: &str) -> Error {
    Error::Exec(ExecError::other(
        "42501",
        format!("permission denied to {what}: only a superuser may (connect as one, or ask one)"),
    ))
}

fn role_name(name: &ast::ObjectName) -> Result<String> {
    match object_parts(name).as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Error::Syntax(format!("role name \"{name}\" cannot be qualified"))),
    }
}

fn unsupported(option: &str) -> Error {
    Error::Unsupported(format!(
        "role option {option} is not supported: a role is a superuser or not (SUPERUSER, LOGIN and PASSWORD are the options there are)"
    ))
}

/// The verifiers of `PASSWORD '...'`, or none for `PASSWORD NULL`.
fn password(user: &str, password: &ast::Password) -> Result<RolePassword> {
    match password {
        ast::Password::NullPassword => Ok(RolePassword::default()),
        ast::Password::Password(ast::Expr::Value(v)) => match &v.value {
            ast::Value::SingleQuotedString(text) | ast::Value::EscapedStringLiteral(text) => {
                if text.is_empty() {
                    // As PostgreSQL: an empty password is no password.
                    Ok(RolePassword::default())
                } else {
                    Ok(RolePassword::new(user, text))
                }
            }
            other => Err(Error::DatatypeMismatch(format!(
                "a password is a string literal, not {other}"
            ))),
        },
        ast::Password::Password(other) => Err(Error::DatatypeMismatch(format!(
            "a password is a string literal, not {other}"
        ))),
    }
}

pub fn bind_create_role(ctx: &Ctx, cr: &ast::CreateRole) -> Result<DdlRequest> {
    if !ctx.superuser {
        return Err(denied("create role"));
    }
    let flags = [
        (cr.create_db.is_some(), "CREATEDB"),
        (cr.create_role.is_some(), "CREATEROLE"),
        (cr.replication.is_some(), "REPLICATION"),
        (cr.bypassrls.is_some(), "BYPASSRLS"),
        (cr.connection_limit.is_some(), "CONNECTION LIMIT"),
        (cr.valid_until.is_some(), "VALID UNTIL"),
        (!cr.in_role.is_empty() || !cr.in_group.is_empty(), "IN ROLE"),
        (
            !cr.role.is_empty() || !cr.user.is_empty() || !cr.admin.is_empty(),
            "ROLE",
        ),
        (cr.authorization_owner.is_some(), "AUTHORIZATION"),
    ];
    if let Some((_, option)) = flags.iter().find(|(given, _)| *given) {
        return Err(unsupported(option));
    }
    let roles = cr
        .names
        .iter()
        .map(|name| {
            let name = role_name(name)?;
            Ok(Role {
                password: cr
                    .password
                    .as_ref()
                    .map(|p| password(&name, p))
                    .transpose()?
                    .unwrap_or_default(),
                superuser: cr.superuser.unwrap_or(false),
                login: cr.login.unwrap_or(false),
                name,
            })
        })
        .collect::<Result<Vec<Role>>>()?;
    Ok(DdlRequest::CreateRoles {
        roles,
        if_not_exists: cr.if_not_exists,
    })
}

pub fn bind_alter_role(ctx: &Ctx, name: &ast::Ident, operation: &ast::AlterRoleOperation) -> Result<DdlRequest> {
    let name = ident(name);
    let mut change = RoleChange::default();
    match operation {
        ast::AlterRoleOperation::RenameRole { role_name } => change.rename = Some(ident(role_name)),
        ast::AlterRoleOperation::WithOptions { options } => {
            for option in options {
                match option {
                    ast::RoleOption::SuperUser(on) => change.superuser = Some(*on),
                    ast::RoleOption::Login(on) => change.login = Some(*on),
                    ast::RoleOption::Password(p) => change.password = Some(password(&name, p)?),
                    ast::RoleOption::Inherit(_) => {}
                    other => return Err(unsupported(&other.to_string())),
                }
            }
        }
        other => {
            return Err(Error::Unsupported(format!(
                "ALTER ROLE ... {other} is not supported (there are no per-role settings yet)"
            )))
        }
    }
    let own_password =
        name == ctx.user && change.superuser.is_none() && change.login.is_none() && change.rename.is_none();
    if !ctx.superuser && !own_password {
        return Err(denied("alter role"));
    }
    Ok(DdlRequest::AlterRole { name, change })
}

pub fn bind_drop_roles(ctx: &Ctx, if_exists: bool, names: &[ast::ObjectName]) -> Result<DdlRequest> {
    if !ctx.superuser {
        return Err(denied("drop role"));
    }
    let names = names.iter().map(role_name).collect::<Result<Vec<String>>>()?;
    if names.iter().any(|n| n == ctx.user) {
        return Err(Error::Exec(ExecError::other("55006", "current user cannot be dropped")));
    }
    Ok(DdlRequest::DropRoles { names, if_exists })
}
