-- Who caused each event (shared/store/actor.py); NULL for events from before.
ALTER TABLE events ADD COLUMN actor text;
