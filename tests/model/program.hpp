// SPDX-License-Identifier: Apache-2.0
#pragma once

// The random task programs of the model-based test: their grammar, a
// generator driven by a source of choices (a seeded generator, or fuzzer
// bytes), and a printer for failure reports.
//
// A program is a few tasks, each a body of statements:
//
//   leaf    await a gate the scheduler opens later (instrumented or plain;
//           a "hop" gate is opened on another thread; a "refusing" gate
//           throws from its await_suspend, ending the body like a raise)
//   call    await a child coroutine running a body
//   all     rt::when_all of child coroutines
//   any     rt::when_any of child coroutines; the losers are cancelled. A
//           "held" first branch is an instrumented object owned by the
//           awaiting coroutine, so it lives on when it loses: it may "linger"
//           (its work goes on, detached, while the coroutine waits on a gate)
//           and be re-awaited
//   spawn   start an eager coroutine running a body, which may outlive the
//           node it was started in (while the library mishandles child
//           coroutines awaited there, the body is leaves it awaits itself)
//   probe   compare current_tree() with the model from inside the coroutine
//   wake    open a gate of another task inline: that task runs in the middle
//           of this one
//   raise   throw; the coroutine that awaited this body catches it

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace model {

/// Where the choices that make up a program and its schedule come from. Every
/// choice is recorded, so a run can be written out as bytes that replay it.
class choice_source {
 public:
  /// Choices from a seeded generator.
  explicit choice_source(std::uint64_t seed) : rng_(seed), from_rng_(true) {}
  /// Choices from bytes; once they run out every choice is 0, which always
  /// means "stop" or "the simplest option", so any bytes make a valid program.
  explicit choice_source(std::span<const std::uint8_t> bytes) : bytes_(bytes), from_rng_(false) {}

  /// A number in [0, n), with 1 <= n <= 256.
  std::size_t pick(std::size_t n) {
    std::size_t value = 0;
    if (from_rng_) {
      value = static_cast<std::size_t>(rng_() % n);
    } else if (next_ < bytes_.size()) {
      value = bytes_[next_++] % n;
    }
    recorded_.push_back(static_cast<std::uint8_t>(value));
    return value;
  }

  /// The choices made so far, as bytes that make the same choices again.
  [[nodiscard]] const std::vector<std::uint8_t>& recorded() const noexcept { return recorded_; }

 private:
  std::mt19937_64 rng_;
  std::span<const std::uint8_t> bytes_;
  std::size_t next_ = 0;
  bool from_rng_;
  std::vector<std::uint8_t> recorded_;
};

/// The most branches an all or any has.
inline constexpr std::size_t max_branches = 3;

/// What a `raise` statement, or a refusing gate, throws; the coroutine that
/// awaited the body it ends catches it.
struct program_error {};

/// How a leaf's gate behaves.
enum class gate_kind { local, hop, refusing };

enum class op { leaf, call, all, any, spawn, probe, wake, raise };

struct statement;

struct body {
  std::vector<statement> statements;
};

/// A child coroutine: awaited by a call, or one branch of all/any.
struct branch {
  std::string name;  // its node's name, when instrumented
  bool instrumented = false;
  body code;
};

struct statement {
  op kind = op::leaf;
  std::string name;  // the node of a leaf, all or any, when instrumented
  bool instrumented = false;
  gate_kind gate = gate_kind::local;  // leaf
  bool held = false;                  // any: branches[0] is owned by the awaiting coroutine
  bool linger = false;                // any, held: wait on a gate before dropping it
  bool reawait = false;               // any, held: await it again after the any
  std::size_t target = 0;             // wake: the task whose gate to open
  std::vector<branch> branches;       // call: one; all, any: one to three; spawn: one
};

struct program {
  std::vector<body> tasks;
};

/// The name of task `t`'s root span.
inline std::string root_name(std::size_t t) { return "t" + std::to_string(t); }

/// Builds a program from a choice source. Every span name is unique in the
/// program, so the model and the snapshot can be compared by name.
class generator {
 public:
  explicit generator(choice_source& choices) : choices_(choices) {}

  program generate() {
    program p;
    const std::size_t tasks = 1 + choices_.pick(max_tasks);
    for (std::size_t t = 0; t < tasks; ++t) {
      budget_ = statements_per_task;
      p.tasks.push_back(make_body(t, tasks, 0));
      // A last look from inside, unless a raise ends the task first: only the
      // root and work that outlives this body are left.
      statement probe;
      probe.kind = op::probe;
      p.tasks.back().statements.push_back(std::move(probe));
    }
    return p;
  }

 private:
  static constexpr std::size_t max_tasks = 3;
  static constexpr std::size_t max_depth = 3;

  body make_body(std::size_t t, std::size_t tasks, std::size_t depth) {
    body b;
    // Three in four bodies go on after each statement; bytes that run out stop.
    while (budget_ > 0 && choices_.pick(4) != 0) {
      --budget_;
      b.statements.push_back(make_statement(t, tasks, depth));
    }
    return b;
  }

  statement make_statement(std::size_t t, std::size_t tasks, std::size_t depth) {
    const std::size_t roll = choices_.pick(20);
    statement s;
    if (roll < 7 || (roll < 14 && depth >= max_depth)) {
      s.kind = op::leaf;
      s.name = fresh_name();
      s.instrumented = choices_.pick(4) != 0;
      s.gate = make_gate_kind();
    } else if (roll < 9) {
      s.kind = op::call;
      s.branches.push_back(make_branch(t, tasks, depth));
    } else if (roll < 13) {
      s.kind = roll < 11 ? op::all : op::any;
      s.name = fresh_name();
      s.instrumented = choices_.pick(4) != 0;
      const std::size_t n = 1 + choices_.pick(max_branches);
      for (std::size_t i = 0; i < n; ++i) s.branches.push_back(make_branch(t, tasks, depth));
      if (s.kind == op::any && choices_.pick(2) == 1) {
        s.held = true;
        s.branches[0].instrumented = true;  // a held branch is an instrumented object
        s.linger = choices_.pick(2) == 1;
        s.reawait = choices_.pick(2) == 1;
      }
    } else if (roll < 14) {
      s.kind = op::spawn;
      s.branches.push_back(make_branch(t, tasks, depth));
    } else if (roll < 17 || (roll < 19 && tasks == 1)) {
      s.kind = op::probe;
    } else if (roll < 19) {
      s.kind = op::wake;
      s.target = (t + 1 + choices_.pick(tasks - 1)) % tasks;
    } else {
      s.kind = op::raise;
    }
    return s;
  }

  branch make_branch(std::size_t t, std::size_t tasks, std::size_t depth) {
    branch b;
    b.name = fresh_name();
    b.instrumented = choices_.pick(4) != 0;
    b.code = make_body(t, tasks, depth + 1);
    return b;
  }

  /// A quarter of the gates hop; one in sixteen refuses (it ends its body).
  gate_kind make_gate_kind() {
    const std::size_t roll = choices_.pick(16);
    if (roll == 1) return gate_kind::refusing;
    return roll >= 12 ? gate_kind::hop : gate_kind::local;
  }

  std::string fresh_name() { return "n" + std::to_string(names_++); }

  choice_source& choices_;
  // Bounds each choice of the scheduler (one per pending gate) well below 256.
  static constexpr std::size_t statements_per_task = 16;
  std::size_t budget_ = 0;
  std::size_t names_ = 0;
};

namespace detail {

inline std::string flags_of(const statement& s) {
  std::string out;
  if (s.instrumented) out += " instrumented";
  if (s.gate == gate_kind::hop) out += " hop";
  if (s.gate == gate_kind::refusing) out += " refusing";
  if (s.held) out += " held";
  if (s.linger) out += " linger";
  if (s.reawait) out += " reawait";
  return out;
}

inline const char* op_name(op kind) {
  switch (kind) {
    case op::leaf:
      return "leaf";
    case op::call:
      return "call";
    case op::all:
      return "all";
    case op::any:
      return "any";
    case op::spawn:
      return "spawn";
    case op::probe:
      return "probe";
    case op::wake:
      return "wake";
    case op::raise:
      return "raise";
  }
  return "?";
}

inline void print_body(const body& b, std::size_t indent, std::string& out);

inline void print_statement(const statement& s, std::size_t indent, std::string& out) {
  out += std::string(indent, ' ') + op_name(s.kind);
  if (!s.name.empty()) out += " " + s.name;
  if (s.kind == op::wake) out += " t" + std::to_string(s.target);
  out += flags_of(s) + "\n";
  for (const branch& b : s.branches) {
    out += std::string(indent + 2, ' ') + "branch " + b.name;
    out += b.instrumented ? " instrumented\n" : "\n";
    print_body(b.code, indent + 4, out);
  }
}

inline void print_body(const body& b, std::size_t indent, std::string& out) {
  for (const statement& s : b.statements) print_statement(s, indent, out);
}

}  // namespace detail

/// The program as indented text, one statement a line.
inline std::string to_string(const program& p) {
  std::string out;
  for (std::size_t t = 0; t < p.tasks.size(); ++t) {
    out += root_name(t) + ":\n";
    detail::print_body(p.tasks[t], 2, out);
  }
  return out;
}

}  // namespace model
