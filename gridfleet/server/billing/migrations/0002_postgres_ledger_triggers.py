"""PostgreSQL only: the database itself proves that every transaction balances and that posted rows never change.

* ``billing_entries_balance`` / ``billing_transaction_balances``: DEFERRABLE INITIALLY DEFERRED constraint
  triggers that run at COMMIT and refuse a transaction whose entries do not sum to zero or that has fewer than
  two entries (however the rows were written: ORM, raw SQL, psql).
* ``billing_entry_immutable`` / ``billing_transaction_immutable``: refuse UPDATE and DELETE of posted rows.

On SQLite the same invariants are checked by ``gridfleet billing audit`` (:mod:`gridfleet.server.billing.audit`)
and by the test suite.
"""

from django.db import migrations

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION billing_check_transaction_balances() RETURNS trigger AS $$
    DECLARE
        txn_id bigint;
        total numeric;
        lines integer;
    BEGIN
        IF TG_TABLE_NAME = 'billing_entry' THEN
            txn_id := NEW.transaction_id;
        ELSE
            txn_id := NEW.id;
        END IF;
        SELECT COALESCE(SUM(amount_units), 0), COUNT(*) INTO total, lines
          FROM billing_entry WHERE transaction_id = txn_id;
        IF total <> 0 OR lines < 2 THEN
            RAISE EXCEPTION 'ledger transaction % does not balance: % entries summing to % units',
                txn_id, lines, total USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE CONSTRAINT TRIGGER billing_entries_balance AFTER INSERT ON billing_entry
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION billing_check_transaction_balances();
    """,
    """
    CREATE CONSTRAINT TRIGGER billing_transaction_balances AFTER INSERT ON billing_transaction
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION billing_check_transaction_balances();
    """,
    """
    CREATE OR REPLACE FUNCTION billing_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% rows are immutable: post a reversing transaction instead', TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER billing_entry_immutable BEFORE UPDATE OR DELETE ON billing_entry
        FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
    """,
    """
    CREATE TRIGGER billing_transaction_immutable BEFORE UPDATE OR DELETE ON billing_transaction
        FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
    """,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_transaction_immutable ON billing_transaction;",
    "DROP TRIGGER IF EXISTS billing_entry_immutable ON billing_entry;",
    "DROP FUNCTION IF EXISTS billing_refuse_change();",
    "DROP TRIGGER IF EXISTS billing_transaction_balances ON billing_transaction;",
    "DROP TRIGGER IF EXISTS billing_entries_balance ON billing_entry;",
    "DROP FUNCTION IF EXISTS billing_check_transaction_balances();",
]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)
    return apply


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
