-- The hosts a tenant's fallback URLs may point to (TenantSettingsChanged); NULL: any.
ALTER TABLE tenants ADD COLUMN fallback_domains text[];
