-- Typed tables of the normalized records. Every row names the Kafka record it came from
-- (kafka_topic, kafka_partition, kafka_offset) under a unique constraint: a batch replayed after
-- a crash inserts nothing twice. Decimals are `numeric` (exact), times `timestamptz` (µs).
-- Nothing is deduplicated on a timestamp: two updates can share one.

CREATE TABLE trades (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    exchange        text        NOT NULL,
    symbol          text        NOT NULL,
    trade_id        text,
    side            text,
    price           numeric     NOT NULL,
    amount          numeric     NOT NULL,
    "timestamp"     timestamptz NOT NULL,
    event_time      timestamptz,
    receipt_time    timestamptz NOT NULL,
    maker           boolean,
    trade_type      text,
    raw_id          text,
    CONSTRAINT trades_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
-- A trade the feed published twice (a reconnect overlap) is stored once. Per trade type: a
-- venue's aggregate-trade ids (Binance `a`) are another sequence than its trade ids (`t`).
CREATE UNIQUE INDEX trades_venue_id ON trades (exchange, symbol, (coalesce(trade_type, '')), trade_id);
CREATE INDEX trades_time ON trades (exchange, symbol, "timestamp" DESC);

CREATE TABLE top_of_book (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    exchange        text        NOT NULL,
    symbol          text        NOT NULL,
    bid_price       numeric,
    bid_size        numeric,
    ask_price       numeric,
    ask_size        numeric,
    "timestamp"     timestamptz,
    event_time      timestamptz,
    receipt_time    timestamptz NOT NULL,
    update_id       bigint,
    CONSTRAINT top_of_book_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX top_of_book_time ON top_of_book (exchange, symbol, "timestamp" DESC);

CREATE TABLE tickers (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    exchange        text        NOT NULL,
    symbol          text        NOT NULL,
    bid             numeric,
    ask             numeric,
    last            numeric,
    open            numeric,
    high            numeric,
    low             numeric,
    volume          numeric,
    quote_volume    numeric,
    "timestamp"     timestamptz,
    event_time      timestamptz,
    receipt_time    timestamptz NOT NULL,
    CONSTRAINT tickers_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX tickers_time ON tickers (exchange, symbol, "timestamp" DESC);

CREATE TABLE funding (
    kafka_topic       text        NOT NULL,
    kafka_partition   integer     NOT NULL,
    kafka_offset      bigint      NOT NULL,
    exchange          text        NOT NULL,
    symbol            text        NOT NULL,
    mark_price        numeric,
    rate              numeric,
    predicted_rate    numeric,
    index_price       numeric,
    next_funding_time timestamptz,
    "timestamp"       timestamptz,
    event_time        timestamptz,
    receipt_time      timestamptz NOT NULL,
    CONSTRAINT funding_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX funding_time ON funding (exchange, symbol, "timestamp" DESC);

CREATE TABLE open_interest (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    exchange        text        NOT NULL,
    symbol          text        NOT NULL,
    open_interest   numeric,
    "timestamp"     timestamptz,
    event_time      timestamptz,
    receipt_time    timestamptz NOT NULL,
    CONSTRAINT open_interest_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX open_interest_time ON open_interest (exchange, symbol, "timestamp" DESC);

CREATE TABLE liquidations (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    exchange        text        NOT NULL,
    symbol          text        NOT NULL,
    side            text,
    quantity        numeric,
    price           numeric,
    order_id        text,
    status          text,
    "timestamp"     timestamptz,
    event_time      timestamptz,
    receipt_time    timestamptz NOT NULL,
    CONSTRAINT liquidations_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX liquidations_time ON liquidations (exchange, symbol, "timestamp" DESC);

CREATE TABLE candles (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    exchange        text        NOT NULL,
    symbol          text        NOT NULL,
    start           timestamptz NOT NULL,
    stop            timestamptz NOT NULL,
    "interval"      text        NOT NULL,
    trades          bigint,
    open            numeric,
    close           numeric,
    high            numeric,
    low             numeric,
    volume          numeric,
    quote_volume    numeric,
    closed          boolean     NOT NULL,
    "timestamp"     timestamptz,
    event_time      timestamptz,
    receipt_time    timestamptz NOT NULL,
    CONSTRAINT candles_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX candles_time ON candles (exchange, symbol, "timestamp" DESC);

CREATE TABLE books (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    exchange        text        NOT NULL,
    symbol          text        NOT NULL,
    bids            jsonb       NOT NULL,
    asks            jsonb       NOT NULL,
    "timestamp"     timestamptz,
    sequence        bigint,
    checksum        text,
    event_time      timestamptz,
    last_update_id  bigint,
    receipt_time    timestamptz NOT NULL,
    CONSTRAINT books_kafka_record UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX books_time ON books (exchange, symbol, "timestamp" DESC);
