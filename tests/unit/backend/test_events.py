import pytest

from backend.events import EventError, FetchRequest, HealthRequest, parse_event


def test_empty_event_uses_configured_symbols_and_defaults():
    assert parse_event({}) == FetchRequest(symbols=None, interval="1d", period="5d")
    assert parse_event(None) == FetchRequest(symbols=None)


def test_full_event_is_normalised():
    request = parse_event({"symbols": ["aapl", "MSFT", "AAPL"], "interval": "1h", "period": "1mo"})
    assert request == FetchRequest(symbols=("AAPL", "MSFT"), interval="1h", period="1mo")


def test_test_event_is_a_health_request():
    assert parse_event({"test": True}) == HealthRequest()
    assert isinstance(parse_event({"test": False}), FetchRequest)


def test_eventbridge_schedule_envelope_means_configured_symbols():
    scheduled = {
        "version": "0",
        "id": "abc",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2024-01-01T00:00:00Z",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"],
        "detail": {},
    }
    # Marked as the schedule's, so a closed market skips it; an explicit {} always runs.
    assert parse_event(scheduled) == FetchRequest(symbols=None, scheduled=True)
    assert parse_event({}) == FetchRequest(symbols=None, scheduled=False)


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        ([], "event", "must be a JSON object"),
        ("AAPL", "event", "must be a JSON object"),
        ({"symbol": ["AAPL"]}, "symbol", "unknown field"),
        ({"symbols": "AAPL"}, "symbols", "must be a list"),
        ({"symbols": []}, "symbols", "must not be empty"),
        ({"symbols": ["AAPL", 7]}, "symbols[1]", "ticker must be a string"),
        ({"symbols": ["AAPL", "DROP TABLE"]}, "symbols[1]", "malformed ticker"),
        ({"symbols": ["../../etc"]}, "symbols[0]", "malformed ticker"),
        ({"symbols": [f"S{i}" for i in range(201)]}, "symbols", "at most 200"),
        ({"interval": "7m"}, "interval", "unknown interval '7m'"),
        ({"interval": 1}, "interval", "must be a string"),
        ({"period": "3d"}, "period", "unknown period '3d'"),
        ({"interval": "1m", "period": "1y"}, "period", "too long for interval '1m'"),
        ({"test": "yes"}, "test", "must be true or false"),
        ({"test": True, "symbols": ["AAPL"]}, "symbols", "cannot be combined with test mode"),
    ],
)
def test_bad_events_name_the_field(event, field, message):
    with pytest.raises(EventError) as caught:
        parse_event(event)
    assert caught.value.field == field
    assert message in str(caught.value)
