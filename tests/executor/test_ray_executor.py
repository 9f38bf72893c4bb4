"""The Ray executor on one local instance (two workers of one CPU), shared by this module
(starting Ray costs seconds): tasks at once and results in order, messages from tasks to
the driver's handler through the mailbox actor, kept checkpoints, a killed worker as
TaskLost, tasks that start tasks, and what a task's resources give it. The instance's
sizing and the check of a cluster's nodes are also tested without Ray."""
from __future__ import annotations

import os
import sys
import time

import pytest

from nasbench.errors import NasbenchError
from nasbench.executor import Resources, TaskLost, make_executor
from nasbench.executor.ray_executor import (
    TASK_RETRIES,
    RayExecutor,
    _call,
    _capacity,
    _local_cpus,
)

ray = pytest.importorskip("ray", reason="the Ray executor's tests need Ray (pip install 'ray>=2.40')")

# This module's task functions travel to the workers by value: under pytest's importlib
# mode the workers cannot import this file by its module name.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


# -- tasks (module-level: they travel to the workers) ---------------------------------------

def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def post_then_sleep(mailbox, message, seconds):
    mailbox.post(message)
    time.sleep(seconds)
    return message


def post_all(mailbox, messages):
    for message in messages:
        mailbox.post(message)
    return len(messages)


def keep_all(mailbox, key, messages):
    """Posts each of ``messages`` kept under ``key``; what the mailbox keeps then."""
    for message in messages:
        mailbox.post(message, keep_as=key)
    return mailbox.kept(key)


def fail(text):
    raise ValueError(text)


def kill_own_worker(driver_pid):
    """Kills the worker it runs in (never the driver: there it only says so)."""
    if os.getpid() == driver_pid:
        return "ran in the driver"
    os.kill(os.getpid(), 9)
    time.sleep(30)


def die_once(mailbox, key, driver_pid):
    """The first attempt keeps a checkpoint and kills its worker; a retry returns the
    checkpoint it resumes from."""
    if os.getpid() == driver_pid:
        return "ran in the driver"
    kept = mailbox.kept(key)
    if kept is None:
        mailbox.post({"epoch": 3}, keep_as=key)
        os.kill(os.getpid(), 9)
        time.sleep(30)
    return kept


def square_and_post(mailbox, x):
    mailbox.post(("square", x))
    return x * x


def start_tasks(tasks, mailbox, xs):
    """A task that starts tasks of its own (a run training its candidates)."""
    return tasks.map(square_and_post, [(mailbox, x) for x in xs]), tasks.retries, tasks.handle, tasks.submitted


def total(values):
    return sum(values)


def threads_and_pid():
    import torch

    return torch.get_num_threads(), os.getpid()


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def received():
    """What the driver's handler was given, in order."""
    return []


@pytest.fixture(scope="module")
def executor(received):
    """A local instance for two tasks of one CPU at once, with both workers started (torch
    imported) so that timings measure the tasks. Closed at the end; closing cancels what
    still runs and returns promptly."""
    if ray.is_initialized():
        pytest.fail("Ray is already initialised in this process (a test left it running)")
    executor = make_executor("ray", workers=2, resources=Resources(cpus=1), handle=received.append)
    try:
        executor.map(sleep_then, [(0.5, None), (0.5, None)])
        yield executor
        executor.submit(sleep_then, 60, "never")
        started = time.perf_counter()
    finally:
        executor.close()
    assert time.perf_counter() - started < 10
    assert not ray.is_initialized()
    executor.close()  # again: nothing to do


@pytest.fixture
def inbox(executor, received):
    """The handler's messages of this test alone (those of earlier tests taken and dropped)."""
    executor.deliver()
    received.clear()
    return received


def wait_all(executor, pending, inbox, limit=60.0):
    """wait() until every one of ``pending`` is done; ``inbox`` as it was when each came back."""
    left, seen, deadline = list(pending), {}, time.monotonic() + limit
    while left:
        assert time.monotonic() < deadline, "tasks did not finish"
        for ref in executor.wait(left, timeout=1.0):
            seen[ref] = list(inbox)
            left.remove(ref)
    return [seen[ref] for ref in pending]


# -- the instance ----------------------------------------------------------------------------

def test_the_local_instance_is_sized_for_the_workers(executor):
    assert executor.name == "ray" and executor.remote
    assert executor.capacity == 2
    assert executor.resources == Resources(cpus=1)
    assert executor.retries == 0  # the driver retries its own tasks, from the store
    assert ray.cluster_resources()["CPU"] == 2
    assert ray.cluster_resources().get("GPU", 0) == 0


def test_map_runs_tasks_at_once_and_keeps_their_order(executor):
    started = time.perf_counter()
    assert executor.map(sleep_then, [(1.0, "first"), (1.0, "second")]) == ["first", "second"]
    assert time.perf_counter() - started < 1.8  # one after the other: 2 s
    # the later tasks finish first; the results stay in the order of the argument sets
    assert executor.map(sleep_then, [(0.6, 0), (0.3, 1), (0.0, 2), (0.1, 3)]) == [0, 1, 2, 3]


def test_a_shared_value_reaches_every_task(executor):
    shared = executor.share(list(range(100)))
    assert isinstance(shared, ray.ObjectRef)
    assert executor.map(total, [(shared,), (shared,)]) == [4950, 4950]


def test_messages_reach_the_handler_in_order_through_wait(executor, inbox):
    messages = [("trial", i) for i in range(25)]
    pending = executor.submit(post_all, executor.mailbox, messages)
    assert executor.result(pending) == 25
    assert inbox == []  # only wait() hands messages over, in the driver's loop
    assert executor.wait([pending], timeout=5) == [pending]
    assert inbox == messages


def test_wait_returns_the_first_done_and_hands_over_messages_of_tasks_still_running(executor, inbox):
    slow = executor.submit(post_then_sleep, executor.mailbox, "epoch 1 of the slow one", 3.0)
    fast = executor.submit(sleep_then, 0.2, "fast")
    started = time.perf_counter()
    assert executor.wait([slow, fast], timeout=10) == [fast]
    assert time.perf_counter() - started < 2.0
    deadline = time.monotonic() + 5
    while not inbox and time.monotonic() < deadline:  # its post may come after the fast one is done
        assert executor.wait([slow], timeout=0.2) == []
    assert inbox == ["epoch 1 of the slow one"]  # progress while the task still runs
    assert executor.wait([slow], timeout=10) == [slow]
    assert executor.result(slow) == "epoch 1 of the slow one"


def test_a_tasks_messages_are_all_handled_by_the_wait_that_finds_it_done(executor, inbox):
    a = [("a", i) for i in range(15)]
    b = [("b", i) for i in range(15)]
    pending = [executor.submit(post_all, executor.mailbox, a), executor.submit(post_all, executor.mailbox, b)]
    seen = wait_all(executor, pending, inbox)
    assert set(a) <= set(seen[0]) and set(b) <= set(seen[1])  # a task's trials before its outcome
    assert sorted(inbox) == sorted(a + b)
    assert [m for m in inbox if m[0] == "a"] == a and [m for m in inbox if m[0] == "b"] == b


def test_a_kept_message_is_the_latest_until_forgotten(executor, inbox):
    key = (7, "candidate 2")
    latest = executor.result(executor.submit(keep_all, executor.mailbox, key, ["epoch 1", "epoch 2", "epoch 3"]))
    assert latest == "epoch 3"
    assert executor.mailbox.kept(key) == "epoch 3"  # the driver sees it too
    assert executor.mailbox.kept((7, "candidate 3")) is None
    executor.wait([executor.submit(sleep_then, 0, None)], timeout=10)
    assert inbox == ["epoch 1", "epoch 2", "epoch 3"]  # kept messages are handled as well
    executor.forget(key)
    assert executor.mailbox.kept(key) is None
    executor.forget(key)  # forgetting twice is no error
    assert executor.mailbox.kept(key) is None


def test_a_tasks_exception_is_raised_by_result_as_itself(executor):
    pending = executor.submit(fail, "no such cell")
    with pytest.raises(ValueError, match="no such cell") as raised:
        executor.result(pending)
    assert type(raised.value) is ValueError
    assert executor.result(executor.submit(sleep_then, 0, "still works")) == "still works"


def test_a_task_whose_worker_is_killed_is_lost_not_retried(executor):
    pending = executor.submit(kill_own_worker, os.getpid())
    with pytest.raises(TaskLost):
        executor.result(pending)
    assert executor.result(executor.submit(sleep_then, 0, "a new worker")) == "a new worker"


def test_tasks_of_tasks_are_retried_by_ray_and_resume_from_the_kept_checkpoint(executor):
    tasks = executor.for_tasks()
    assert tasks.retries == TASK_RETRIES > 0
    key = ("run", 1, "candidate 0")
    assert tasks.result(tasks.submit(die_once, tasks.mailbox, key, os.getpid())) == {"epoch": 3}
    executor.forget(key)


def test_tasks_start_tasks_through_their_copy_and_post_to_the_driver(executor, inbox):
    pending = executor.submit(start_tasks, executor.for_tasks(), executor.mailbox, [3, 1, 4, 1, 5])
    [seen] = wait_all(executor, [pending], inbox)
    squares, retries, handle, submitted = executor.result(pending)
    assert squares == [9, 1, 16, 1, 25]
    assert (retries, handle, submitted) == (TASK_RETRIES, None, [])
    assert sorted(seen) == sorted(("square", x) for x in [3, 1, 4, 1, 5])


def test_the_driver_executor_pickles_without_its_handler(executor):
    copy = ray.cloudpickle.loads(ray.cloudpickle.dumps(executor))
    assert copy.handle is None and copy.submitted == []
    assert (copy.resources, copy.capacity, copy.retries) == (executor.resources, 2, 0)
    copy.close()  # a task's copy lets go of nothing: the instance is the driver's
    executor.for_tasks().close()
    assert ray.is_initialized()


@pytest.mark.parametrize("cpus", [1.0, 1.5, 2.0])
def test_a_task_runs_with_the_threads_of_its_cpus(executor, cpus):
    resources = Resources(cpus=cpus)
    sized = RayExecutor(resources, executor.mailbox, executor.capacity, retries=0)
    threads, pid = sized.result(sized.submit(threads_and_pid))
    assert pid != os.getpid()
    assert threads == resources.threads()


def test_the_task_wrapper_sets_torch_threads():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert _call(torch.get_num_threads, 2) == 2
        assert _call(pow, 1, 2, 5) == 32
    finally:
        torch.set_num_threads(before)


# -- sizing and nodes, without Ray ---------------------------------------------------------

def node(cpus, gpus=0, alive=True):
    return {"Alive": alive, "Resources": {"CPU": cpus, **({"GPU": gpus} if gpus else {}), "memory": 1e9}}


@pytest.mark.parametrize("workers, cpus, local", [(1, 1, 1), (2, 1, 2), (1, 0.5, 1), (3, 0.5, 2), (5, 0.5, 3),
                                                  (10, 0.3, 3), (2, 1.5, 3), (4, 2, 8)])
def test_a_local_instance_has_whole_cpus_for_every_worker_at_once(workers, cpus, local):
    assert _local_cpus(workers, Resources(cpus=cpus)) == local
    assert _capacity([node(local)], Resources(cpus=cpus)) >= workers


@pytest.mark.parametrize("nodes, resources, capacity", [
    ([node(8)], Resources(cpus=1), 8),
    ([node(8), node(4)], Resources(cpus=2), 6),
    ([node(7)], Resources(cpus=2), 3),  # whole tasks only
    ([node(3)], Resources(cpus=0.5), 6),
    ([node(8), node(64, alive=False)], Resources(cpus=4), 2),  # a dead node holds nothing
    ([node(16, gpus=2)], Resources(cpus=1, gpus=1), 2),  # the GPUs limit
    ([node(16, gpus=2)], Resources(cpus=1, gpus=0.5), 4),
    ([node(16, gpus=2)], Resources(cpus=1, gpus=0.3), 6),
    ([node(3, gpus=4)], Resources(cpus=1, gpus=0.25), 3),  # the CPUs limit
    ([node(8), node(8, gpus=1)], Resources(cpus=2, gpus=1), 1),  # only the GPU node holds one
    ([node(8, gpus=4)], Resources(cpus=2), 4),  # a CPU task does not count GPUs
])
def test_capacity_counts_whole_tasks_on_live_nodes(nodes, resources, capacity):
    assert _capacity(nodes, resources) == capacity


@pytest.mark.parametrize("nodes, resources, message", [
    ([node(8), node(16)], Resources(gpus=1), "--gpus-per-task 1: the Ray cluster has no GPU"),
    ([node(8)], Resources(gpus=0.5), "--gpus-per-task 0.5: the Ray cluster has no GPU"),
    ([node(8, gpus=1, alive=False), node(8)], Resources(gpus=1), "has no GPU"),
    ([node(8, gpus=2), node(8, gpus=1)], Resources(gpus=3),
     r"--gpus-per-task 3: no node of the Ray cluster has that many GPUs \(the most: 2\)"),
    ([node(8, gpus=1), node(8, gpus=1)], Resources(gpus=1.5), r"that many GPUs \(the most: 1\)"),
    ([node(4), node(8)], Resources(cpus=16),
     r"--cpus-per-task 16: no node of the Ray cluster has that many CPUs \(the most: 8\)"),
    ([node(4), node(32, alive=False)], Resources(cpus=8), r"that many CPUs \(the most: 4\)"),
    ([node(2)], Resources(cpus=2.5), r"--cpus-per-task 2.5: .* \(the most: 2\)"),
])
def test_a_task_no_node_holds_is_refused(nodes, resources, message):
    with pytest.raises(NasbenchError, match=message):
        _capacity(nodes, resources)


@pytest.mark.parametrize("options, message", [
    (dict(address="127.0.0.1:1"), "no Ray cluster answers at 127.0.0.1:1"),
    (dict(address="nonsense"), "--address 'nonsense': give HOST:PORT"),
    (dict(address="head:port"), "--address 'head:port': give HOST:PORT"),
    (dict(address="auto", workers=2), "drop --workers"),
    (dict(resources=Resources(cpus=64)), "--cpus-per-task 64: this machine has 2 CPUs"),
])
def test_bad_input_is_refused_before_ray_starts(options, message, monkeypatch):
    def init(*args, **kwargs):
        raise AssertionError("ray.init was called")

    monkeypatch.setattr(ray, "init", init)
    started = time.perf_counter()
    with pytest.raises(NasbenchError, match=message):
        make_executor("ray", cpu_count=2, **options)
    assert time.perf_counter() - started < 10
