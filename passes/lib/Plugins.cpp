//===- Plugins.cpp - load pass plug-ins and report their errors -----------===//
//
// A deltaflow plug-in is an MLIR pass plug-in (mlirGetPassPluginInfo); its
// callback registers sparsity policies (and may register passes). Loading
// fails with one line if the library cannot be opened, is not a plug-in, or
// registers a policy name that is taken.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Transforms/Passes.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

#include "mlir/Pass/PassRegistry.h"

#include <cctype>
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/StringSaver.h"

namespace {
bool loadPassPlugins(const std::vector<std::string> &paths, std::string &error) {
  mlir::deltaflow::registerBuiltinSparsityPolicies();
  for (const std::string &path : paths) {
    auto plugin = mlir::PassPlugin::load(path);
    if (!plugin) {
      error = "cannot load pass plug-in '" + path +
              "': " + llvm::toString(plugin.takeError());
      return false;
    }
    plugin->registerPassRegistryCallbacks();
    std::vector<std::string> errors =
        ::deltaflow::sparsity::takeRegistrationErrors();
    if (!errors.empty()) {
      error = "pass plug-in '" + path + "': " + errors.front();
      return false;
    }
  }
  return true;
}

std::vector<std::string> takePluginArguments(int &argc, char **argv) {
  std::vector<std::string> paths;
  const std::string flag = "--load-pass-plugin";
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("-load-pass-plugin", 0) == 0)
      arg = "-" + arg; // accept a single dash, as LLVM's cl does
    if (arg.rfind(flag + "=", 0) == 0) {
      paths.push_back(arg.substr(flag.size() + 1));
      continue;
    }
    if (arg == flag && i + 1 < argc) {
      paths.push_back(argv[++i]);
      continue;
    }
    argv[out++] = argv[i];
  }
  argc = out;
  argv[argc] = nullptr;
  return paths;
}
} // namespace

bool mlir::deltaflow::loadPluginArguments(int &argc, char **argv,
                                          std::string &error) {
  return loadPassPlugins(takePluginArguments(argc, argv), error);
}

namespace {
/// MLIR 19 drops the braces around an option's value before it scans the
/// value ("param={4}{x}" is scanned as "4}{x"), so the inside of each
/// braced value must balance on its own. `text` is options text (space-
/// separated NAME=VALUE pieces) and balances as a whole.
std::string bracedValueText(llvm::StringRef text) {
  size_t piece = 0;
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    char c = i < text.size() ? text[i] : ' ';
    if (quote) {
      quote = c == quote ? 0 : quote;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      --depth;
    } else if (c == ' ' && depth == 0) {
      llvm::StringRef item = text.slice(piece, i);
      size_t eq = item.find('=');
      // Trimmed as MLIR trims it: "\r" and the like count as space there.
      llvm::StringRef value =
          eq == llvm::StringRef::npos ? "" : item.drop_front(eq + 1).trim();
      if (value.size() >= 2 && value.front() == '{' && value.back() == '}') {
        std::string why = mlir::deltaflow::unbalancedOptionText(
            value.drop_front().drop_back().str());
        if (!why.empty())
          return "inside the braces of the value at column " +
                 std::to_string(piece + eq + 2) + " (MLIR drops them): " + why;
      }
      // MLIR 19 drops the quotes around a value too, then scans a list
      // option's value for ',' with quotes and ranges: an unclosed one
      // inside loops forever ("param='a(b'", found by fuzz-pass-options).
      llvm::StringRef trimmed = value.trim();
      if (trimmed.size() >= 2 && (trimmed.front() == '\'' || trimmed.front() == '"') &&
          trimmed.back() == trimmed.front()) {
        std::string why = mlir::deltaflow::unbalancedOptionText(
            trimmed.drop_front().drop_back().trim().str());
        if (!why.empty())
          return "inside the quotes of the value at column " +
                 std::to_string(piece + eq + 2) + " (MLIR drops them): " + why;
      }
      piece = i + 1;
    }
  }
  return "";
}

/// MLIR 19's findChar (PassRegistry.cpp): the position of `c` at or after
/// `i`, skipping ranges and quotes. Where a range or quote never closes it
/// sets i = npos and ++i wraps to 0: it loops forever. False in that case
/// (or past a nesting depth that would overflow its stack).
bool mlirFindCharEnds(llvm::StringRef s, size_t i, char c, size_t &at, int depth = 0) {
  if (depth > 256)
    return false;
  for (size_t e = s.size(); i < e; ++i) {
    if (s[i] == c) {
      at = i;
      return true;
    }
    size_t j = i;
    char close = s[i] == '{' ? '}' : s[i] == '(' ? ')' : s[i] == '[' ? ']' : 0;
    if (close) {
      if (!mlirFindCharEnds(s, i + 1, close, j, depth + 1))
        return false;
    } else if (s[i] == '"' || s[i] == '\'') {
      j = s.find(s[i], i + 1);
    }
    if (j == llvm::StringRef::npos)
      return false;
    i = j;
  }
  at = llvm::StringRef::npos;
  return true;
}

/// MLIR's extractArgAndUpdateOptions: the argument, trimmed of every
/// whitespace character (StringRef::trim), its quotes or outer braces
/// dropped. MLIR 19 drops a leading '{' and a trailing '}' whether or not
/// they match ("{4}{x}" gives "4}{x"; later releases check the match with
/// findChar); both are modelled: the drop as 19 does it, and false where
/// the later scan for the match would loop.
bool mlirExtractArg(llvm::StringRef &options, size_t size, llvm::StringRef &arg) {
  arg = options.take_front(size).trim();
  options = options.drop_front(size).ltrim();
  if (arg.size() <= 1)
    return true;
  if ((arg.front() == '\'' && arg.back() == '\'') || (arg.front() == '"' && arg.back() == '"')) {
    arg = arg.drop_front().drop_back().trim();
    return true;
  }
  if (arg.front() == '{') {
    size_t match;
    if (!mlirFindCharEnds(arg, 1, '}', match))
      return false;
    if (arg.back() == '}')
      arg = arg.drop_front().drop_back().trim();
  }
  return true;
}

/// Replays how MLIR 19 reads options text (parseNextArg, then a list
/// option's parseCommaSeparatedList, for every value, since any option may
/// be a list) and says where it would never return: the fuzz target found
/// quoted values whose inside does not balance, which no simpler check
/// catches exactly.
std::string mlirOptionScanText(llvm::StringRef options) {
  while (!options.empty()) {
    options = options.ltrim();
    llvm::StringRef whole = options;
    size_t i = 0, e = options.size();
    while (i != e && options[i] != ' ' && options[i] != '=')
      ++i;
    // The name goes through extractArgAndUpdateOptions too: "{(a=)}" has
    // the name "{(a", whose scan for '}' never returns.
    llvm::StringRef name, rest = options;
    if (!mlirExtractArg(rest, i, name))
      return "the option name '" + whole.take_front(i).str() +
             "' has a range that never closes";
    if (i == e || options[i] == ' ') {
      options = options.drop_front(i);
      continue;
    }
    options = options.drop_front(i + 1);
    // The value: up to a space outside quotes and braces.
    auto punct = [&](size_t &at, char p) {
      if (options[at] != p)
        return false;
      size_t next = options.find(p, at + 1);
      if (next != llvm::StringRef::npos)
        at = next;
      return true;
    };
    size_t end = 0;
    for (e = options.size(); end != e && options[end] != ' '; ++end) {
      char c = options[end];
      if (punct(end, '\'') || punct(end, '"'))
        continue;
      if (c == '{') {
        size_t braces = 1;
        for (++end; end != e; ++end) {
          if (punct(end, '\'') || punct(end, '"'))
            continue;
          if (options[end] == '{')
            ++braces;
          else if (options[end] == '}' && --braces == 0)
            break;
        }
        if (end == e)
          break;
      }
    }
    llvm::StringRef value;
    if (!mlirExtractArg(options, end, value))
      return "the value of '" + whole.take_front(i).str() + "' has a brace that never closes";
    size_t at;
    for (;;) {
      if (!mlirFindCharEnds(value, 0, ',', at))
        return "the value of '" + whole.take_front(i).str() +
               "' has a quote or range that never closes once MLIR drops its outer quotes or braces";
      if (at == llvm::StringRef::npos)
        break;
      llvm::StringRef element;
      if (!mlirExtractArg(value, at, element))
        return "the value of '" + whole.take_front(i).str() + "' has a brace that never closes";
      value = value.drop_front();
    }
  }
  return "";
}

/// The options text of each pass in a pipeline, cut as MLIR 19's
/// parsePipelineText cuts it: from a '{' to the '}' that balances it,
/// counting braces inside quotes too (it does not know quotes), each
/// checked by bracedValueText and mlirOptionScanText. A quote-aware cut
/// differs where a quote holds a brace ("p{a=x'{'},q{b=y'}'}" gives p the
/// options "a=x'{'},q{b=y'}'"), found by fuzz-pass-options. Every group at
/// every depth is checked, not only the outermost: an option's value may
/// itself be a pipeline that MLIR parses later (inline's op-pipelines=
/// "func.func(canonicalize{disable-patterns='a(b'})").
/// `pipeline`: `text` is a pipeline, whose every '{' MLIR cuts; else it is
/// a pass's options, where only the groups of a value that is itself a
/// pipeline are cut, and an unclosed one is not an error here.
std::string pipelineBracedValueText(llvm::StringRef text, bool pipeline = true) {
  for (size_t open = 0; open < text.size(); ++open) {
    if (text[open] != '{')
      continue;
    size_t i = open + 1, depth = 1;
    for (; i < text.size(); ++i) {
      if (text[i] == '{')
        ++depth;
      else if (text[i] == '}' && --depth == 0)
        break;
    }
    if (i >= text.size() && !pipeline)
      continue;
    if (i >= text.size())
      return "the '{' at column " + std::to_string(open + 1) +
             " never closes when braces inside quotes are counted (MLIR's "
             "pipeline parser counts them)";
    llvm::StringRef options = text.slice(open + 1, i);
    if (std::string why = bracedValueText(options); !why.empty())
      return why;
    if (std::string why = mlirOptionScanText(options); !why.empty())
      return why;
  }
  return "";
}
} // namespace

std::string mlir::deltaflow::unbalancedOptionText(const std::string &text,
                                               bool pipeline) {
  constexpr size_t kMaxOptionNesting = 64;
  std::vector<std::pair<char, size_t>> open; // bracket or quote, column
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (!open.empty() && (open.back().first == '"' || open.back().first == '\'')) {
      if (c == open.back().first)
        open.pop_back();
      continue;
    }
    // Option values are cut at spaces outside braces and quotes, so a space
    // inside '(' or '[' leaves each half unclosed (in a pipeline, only in
    // a pass's {options}: its nesting parentheses are not option text).
    if (std::isspace(static_cast<unsigned char>(c)) && !open.empty() &&
        (open.back().first == '(' || open.back().first == '[')) {
      bool inOptions = !pipeline;
      for (const auto &o : open)
        inOptions |= o.first == '{';
      if (inOptions)
        return std::string("a space inside the '") + open.back().first +
               "' opened at column " + std::to_string(open.back().second) +
               " (option values are cut at spaces)";
    }
    if (c == '"' || c == '\'' || c == '(' || c == '[' || c == '{') {
      // The checks recurse once per level of braced value: bound them.
      if (open.size() >= kMaxOptionNesting)
        return "brackets nested deeper than " + std::to_string(kMaxOptionNesting) +
               " levels at column " + std::to_string(i + 1);
      open.push_back({c, i + 1});
    } else if (c == ')' || c == ']' || c == '}') {
      char want = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (open.empty() || open.back().first != want)
        return std::string("unmatched '") + c + "' at column " +
               std::to_string(i + 1);
      open.pop_back();
    }
  }
  if (open.empty()) {
    if (pipeline)
      return pipelineBracedValueText(text);
    std::string why = bracedValueText(text);
    if (why.empty())
      why = mlirOptionScanText(text);
    // A value may hold a pipeline with options of its own.
    return why.empty() ? pipelineBracedValueText(text, /*pipeline=*/false) : why;
  }
  const auto &[c, col] = open.back();
  return std::string(c == '"' || c == '\'' ? "unclosed quote " : "unclosed '") +
         (c == '"' || c == '\'' ? std::string(1, c) : std::string(1, c) + "'") +
         " at column " + std::to_string(col);
}

bool mlir::deltaflow::checkPassArguments(int argc, char **argv,
                                         std::string &error) {
  // As MlirOptMain reads them: response files (@FILE) expanded first.
  llvm::BumpPtrAllocator alloc;
  llvm::StringSaver saver(alloc);
  llvm::SmallVector<const char *, 32> args(argv, argv + argc);
  if (!llvm::cl::ExpandResponseFiles(saver, llvm::cl::TokenizeGNUCommandLine, args)) {
    error = "cannot expand the response files of the command line";
    return false;
  }
  auto isPipelineFlag = [](llvm::StringRef name) {
    return name == "p" || name == "pass-pipeline";
  };
  for (size_t i = 1; i < args.size(); ++i) {
    if (!args[i])
      continue;
    llvm::StringRef arg = args[i];
    if (arg.size() < 2 || arg[0] != '-')
      continue;
    llvm::StringRef body = arg.drop_front(arg.starts_with("--") ? 2 : 1);
    auto [name, rest] = body.split('=');
    bool hasValue = body.contains('=');
    std::string value;
    bool pipeline = isPipelineFlag(name);
    if (pipeline && !hasValue) {
      if (i + 1 >= args.size() || !args[i + 1])
        continue;
      value = args[++i];
    } else if (hasValue && (pipeline || PassInfo::lookup(name) ||
                            PassPipelineInfo::lookup(name))) {
      // --NAME=OPTIONS of a registered pass or pipeline (upstream ones too:
      // canonicalize's list options hang the same way), or a pipeline:
      // which of the two only the flag's name says.
      value = rest.str();
    } else {
      continue;
    }
    if (std::string why = unbalancedOptionText(value, pipeline); !why.empty()) {
      error = "bad pass options in '" + arg.str() +
              (pipeline && !hasValue ? " " + value : "") + "': " + why;
      return false;
    }
  }
  return true;
}

std::string mlir::deltaflow::tooDeeplyNestedText(llvm::StringRef text,
                                                 llvm::StringRef name) {
  unsigned depth = 0, line = 1, column = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
    } else if (c == '"') { // a string literal, with backslash escapes
      for (++i; i < text.size() && text[i] != '"' && text[i] != '\n'; ++i, ++column)
        if (text[i] == '\\' && i + 1 < text.size()) {
          ++i;
          ++column;
        }
      ++column;
      if (i < text.size() && text[i] == '\n') {
        ++line;
        column = 0;
      }
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i + 1 < text.size() && text[i + 1] != '\n')
        ++i;
    } else if (c == '(' || c == '[' || c == '{' || c == '<') {
      if (++depth > kMaxMlirNesting)
        return (name + ":" + llvm::Twine(line) + ":" + llvm::Twine(column) +
                ": error: brackets nested deeper than " + llvm::Twine(kMaxMlirNesting) +
                " levels (MLIR's parser recurses once per level and would overflow "
                "its stack)")
            .str();
    } else if ((c == ')' || c == ']' || c == '}' || (c == '>' && (i == 0 || text[i - 1] != '-'))) &&
               depth > 0) {
      --depth;
    }
  }
  return "";
}

bool mlir::deltaflow::checkInputNesting(int argc, char **argv, std::string &error) {
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef arg = argv[i];
    if (arg.empty() || arg[0] == '-' || arg[0] == '@' ||
        (i > 1 && (llvm::StringRef(argv[i - 1]) == "-o" ||
                   llvm::StringRef(argv[i - 1]) == "--o")))
      continue;
    auto buffer = llvm::MemoryBuffer::getFile(arg, /*IsText=*/true);
    if (!buffer)
      continue; // MLIR reports a file it cannot open
    if (std::string why = tooDeeplyNestedText((*buffer)->getBuffer(), arg); !why.empty()) {
      error = why;
      return false;
    }
  }
  return true;
}
