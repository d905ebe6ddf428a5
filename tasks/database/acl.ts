// Reading privileges out of exploded ACLs, including the defaults PostgreSQL applies when an
// ACL column is NULL (acldefault()). Pure helpers for the plan.

import type { AclItem, DatabaseFact } from './facts.ts';

function item(grantee: string, privilege: string, owner: string): AclItem {
  return { grantee, isPublic: grantee === 'PUBLIC', grantor: owner, privilege, grantable: false };
}

/** acldefault('d', owner): the owner has everything, PUBLIC may CONNECT and create TEMP tables. */
export function defaultDatabaseAcl(owner: string): AclItem[] {
  return [
    item('PUBLIC', 'CONNECT', owner),
    item('PUBLIC', 'TEMPORARY', owner),
    item(owner, 'CONNECT', owner),
    item(owner, 'CREATE', owner),
    item(owner, 'TEMPORARY', owner),
  ];
}

/** acldefault('n', owner): only the owner has USAGE and CREATE. */
export function defaultSchemaAcl(owner: string): AclItem[] {
  return [item(owner, 'USAGE', owner), item(owner, 'CREATE', owner)];
}

/** The database's ACL as PostgreSQL applies it (NULL datacl = defaults). */
export function effectiveDatabaseAcl(db: Pick<DatabaseFact, 'acl' | 'owner'>): AclItem[] {
  return db.acl ?? defaultDatabaseAcl(db.owner);
}

/** PUBLIC holds `privilege` in this ACL. */
export function publicHas(acl: AclItem[], privilege: string): boolean {
  return acl.some((a) => a.isPublic && a.privilege === privilege);
}

/** `role` itself (not through PUBLIC or membership) holds `privilege`: what a GRANT creates. */
export function roleHas(acl: AclItem[], role: string, privilege: string): boolean {
  return acl.some((a) => !a.isPublic && a.grantee === role && a.privilege === privilege);
}

/** The privileges in `wanted` that `role` does not hold directly, in `wanted`'s order. */
export function missingPrivileges(acl: AclItem[], role: string, wanted: readonly string[]): string[] {
  return wanted.filter((p) => !roleHas(acl, role, p));
}
