-- Nothing to do on SQLite: the embedded mode has one server process, which empties its own
-- sign-in cache after each change to an account (PostgreSQL's 0008 announces changes to the
-- other replicas). The number is kept so both trees stay in step.
SELECT 1;
