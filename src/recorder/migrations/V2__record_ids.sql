-- Offsets are not identities: a topic deleted and created again (a broker restarted empty)
-- starts again at offset 0. Every record tickflow produces carries a `record_id` header
-- (unique per record: the producer instance and its sequence), kept here; a row is the same
-- record only when its coordinates and its id agree, so a new incarnation of a topic is stored
-- beside the old one and a replayed batch still inserts nothing twice. Records without the
-- header (another producer) keep NULL, and NULLs compare equal (PostgreSQL 15+), so for them
-- the coordinates alone decide, as before.
ALTER TABLE trades ADD COLUMN kafka_record_id text;
ALTER TABLE trades DROP CONSTRAINT trades_kafka_record;
ALTER TABLE trades ADD CONSTRAINT trades_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
ALTER TABLE top_of_book ADD COLUMN kafka_record_id text;
ALTER TABLE top_of_book DROP CONSTRAINT top_of_book_kafka_record;
ALTER TABLE top_of_book ADD CONSTRAINT top_of_book_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
ALTER TABLE tickers ADD COLUMN kafka_record_id text;
ALTER TABLE tickers DROP CONSTRAINT tickers_kafka_record;
ALTER TABLE tickers ADD CONSTRAINT tickers_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
ALTER TABLE funding ADD COLUMN kafka_record_id text;
ALTER TABLE funding DROP CONSTRAINT funding_kafka_record;
ALTER TABLE funding ADD CONSTRAINT funding_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
ALTER TABLE open_interest ADD COLUMN kafka_record_id text;
ALTER TABLE open_interest DROP CONSTRAINT open_interest_kafka_record;
ALTER TABLE open_interest ADD CONSTRAINT open_interest_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
ALTER TABLE liquidations ADD COLUMN kafka_record_id text;
ALTER TABLE liquidations DROP CONSTRAINT liquidations_kafka_record;
ALTER TABLE liquidations ADD CONSTRAINT liquidations_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
ALTER TABLE candles ADD COLUMN kafka_record_id text;
ALTER TABLE candles DROP CONSTRAINT candles_kafka_record;
ALTER TABLE candles ADD CONSTRAINT candles_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
ALTER TABLE books ADD COLUMN kafka_record_id text;
ALTER TABLE books DROP CONSTRAINT books_kafka_record;
ALTER TABLE books ADD CONSTRAINT books_kafka_record
    UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_id);
