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

#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Support/Error.h"

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
