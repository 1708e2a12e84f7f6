-- Accounts, tokens and artifacts (issue 20, brief A).

-- Tokens expire: NULL only for tokens made before this migration and for the
-- bootstrap admin token from fleetd's settings; the authenticator refuses a token past
-- expires_at with UNAUTHENTICATED naming "expired".
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;

-- A compiled artifact is immutable: devices may run it and offers name its sha256.
-- A recompile stores a new outcome only where the earlier one was a refusal; the
-- repository refuses to overwrite a compiled row, and this trigger refuses it too
-- for any other writer (its blob, status, version and class never change, and the row
-- is never deleted).
CREATE FUNCTION artifacts_compiled_immutable() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'artifact % is compiled and immutable: it cannot be deleted', OLD.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status
     OR NEW.artifact_sha256 IS DISTINCT FROM OLD.artifact_sha256
     OR NEW.version_id IS DISTINCT FROM OLD.version_id
     OR NEW.device_class IS DISTINCT FROM OLD.device_class THEN
    RAISE EXCEPTION 'artifact % is compiled and immutable: a recompile cannot replace it', OLD.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER artifacts_compiled_immutable
  BEFORE UPDATE OR DELETE ON artifacts
  FOR EACH ROW WHEN (OLD.status = 'compiled')
  EXECUTE FUNCTION artifacts_compiled_immutable();
