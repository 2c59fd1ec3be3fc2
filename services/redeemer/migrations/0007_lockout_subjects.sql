-- Wrong answers are counted per code for the person and for the client's address
-- (services/redeemer/lockout.py). The person is no longer kept by user id in clear but as
-- 'user:{UserIndex}', the address as 'address:{bucket}'. Windows in progress (10 minutes at
-- most) are forgotten by this change.
DELETE FROM verification_failures;
ALTER TABLE verification_failures RENAME COLUMN user_id TO subject;
