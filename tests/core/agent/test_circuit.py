import pytest

from core.agent.circuit import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def circuit(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_timeout_s=30, clock=clock)


def fail(circuit: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert circuit.allow()
        circuit.record_failure()


def test_a_new_circuit_is_closed_and_lets_every_call_through(circuit):
    assert circuit.state == "closed"
    assert all(circuit.allow() for _ in range(10))
    assert circuit.retry_after() == 0


def test_it_opens_after_the_threshold_of_consecutive_failures(circuit):
    fail(circuit, 2)
    assert circuit.state == "closed"
    fail(circuit, 1)
    assert circuit.state == "open"
    assert not circuit.allow()


def test_a_success_resets_the_count_of_consecutive_failures(circuit):
    fail(circuit, 2)
    circuit.record_success()
    fail(circuit, 2)
    assert circuit.state == "closed"
    assert circuit.consecutive_failures == 2


def test_retry_after_counts_down_to_the_half_open_moment(circuit, clock):
    fail(circuit, 3)
    assert circuit.retry_after() == 30
    clock.now += 12
    assert circuit.retry_after() == 18
    assert circuit.state == "open"
    clock.now += 18
    assert circuit.retry_after() == 0
    assert circuit.state == "half_open"


def test_half_open_lets_exactly_one_trial_through(circuit, clock):
    fail(circuit, 3)
    clock.now += 30
    assert circuit.allow()
    assert not circuit.allow()
    assert circuit.state == "half_open"


def test_a_successful_trial_closes_the_circuit(circuit, clock):
    fail(circuit, 3)
    clock.now += 30
    assert circuit.allow()
    circuit.record_success()
    assert circuit.state == "closed"
    assert circuit.consecutive_failures == 0
    assert circuit.allow() and circuit.allow()


def test_a_failed_trial_opens_it_again_for_a_full_timeout(circuit, clock):
    fail(circuit, 3)
    clock.now += 30
    assert circuit.allow()
    circuit.record_failure()
    assert circuit.state == "open"
    assert circuit.retry_after() == 30
    clock.now += 29.9
    assert not circuit.allow()
    clock.now += 0.1
    assert circuit.allow()


def test_a_trial_that_never_reports_back_expires_after_the_timeout(circuit, clock):
    fail(circuit, 3)
    clock.now += 30
    assert circuit.allow()  # This trial's run is cancelled: no outcome is ever recorded.
    clock.now += 29
    assert not circuit.allow()
    clock.now += 1
    assert circuit.allow()


def test_late_outcomes_of_calls_started_before_opening_change_nothing(circuit, clock):
    fail(circuit, 3)
    clock.now += 10
    circuit.record_success()
    assert circuit.state == "open"
    circuit.record_failure()
    assert circuit.retry_after() == 20


def test_a_threshold_of_one_opens_on_the_first_failure(clock):
    circuit = CircuitBreaker(1, 5, clock)
    fail(circuit, 1)
    assert circuit.state == "open"


@pytest.mark.parametrize(("threshold", "timeout"), [(0, 5), (3, 0), (3, -1)])
def test_a_nonsensical_configuration_is_refused(clock, threshold, timeout):
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, timeout, clock)
