//===- GpuKernelBuilder.cpp - context, module and PTX lowering of GPU kernels ===//

#include "GpuKernelBuilder.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

#include <mutex>
#include <stdexcept>

using namespace mlir;

namespace deltaflow::compiler {

namespace {
void registerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerConvertNVGPUToNVVMPass();
    registerSCFToControlFlowPass();
    registerConvertGpuOpsToNVVMOpsPass();
    registerReconcileUnrealizedCastsPass();
    registerGpuNVVMAttachTarget();
    registerGpuModuleToBinaryPass();
    registerCanonicalizerPass();
    registerCSEPass();
  });
}

DialectRegistry kernelRegistry() {
  DialectRegistry registry;
  registry.insert<arith::ArithDialect, gpu::GPUDialect, LLVM::LLVMDialect,
                  NVVM::NVVMDialect, math::MathDialect, memref::MemRefDialect,
                  nvgpu::NVGPUDialect, scf::SCFDialect, vector::VectorDialect>();
  registerAllExtensions(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  return registry;
}
} // namespace

struct GpuKernelModule::State {
  MLIRContext ctx{kernelRegistry()};
  std::string diagnostics;
  ScopedDiagnosticHandler handler{&ctx, [this](Diagnostic &d) {
                                    if (d.getSeverity() == DiagnosticSeverity::Error)
                                      diagnostics += (diagnostics.empty() ? "" : "; ") + d.str();
                                    return success();
                                  }};
  ImplicitLocOpBuilder b{FileLineColLoc::get(&ctx, "deltaflow-tensorcore", 0, 0), &ctx};
  OwningOpRef<ModuleOp> module;
  gpu::GPUModuleOp gpuModule;
};

GpuKernelModule::GpuKernelModule(const std::string &gpuModuleName, std::string what)
    : state_(std::make_unique<State>()), what_(std::move(what)) {
  registerOnce();
  State &s = *state_;
  s.ctx.loadAllAvailableDialects();
  b_ = &s.b;
  s.module = ModuleOp::create(s.b.getLoc());
  (*s.module)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                       s.b.getUnitAttr());
  s.b.setInsertionPointToStart(s.module->getBody());
  s.gpuModule = s.b.create<gpu::GPUModuleOp>(gpuModuleName);
}

GpuKernelModule::~GpuKernelModule() = default;

Type GpuKernelModule::buffer(Type t) {
  return MemRefType::get({ShapedType::kDynamic}, t);
}

gpu::GPUFuncOp GpuKernelModule::addKernel(const std::string &name,
                                          ArrayRef<Type> args, int threads) {
  State &s = *state_;
  s.b.setInsertionPoint(s.gpuModule.getBody()->getTerminator());
  auto fn = s.b.create<gpu::GPUFuncOp>(name, s.b.getFunctionType(args, {}));
  fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), s.b.getUnitAttr());
  fn->setAttr("nvvm.maxntid", s.b.getDenseI32ArrayAttr({threads, 1, 1}));
  s.b.setInsertionPointToStart(&fn.getBody().front());
  kernels_.push_back(name);
  return fn;
}

std::string GpuKernelModule::ptx() {
  State &s = *state_;
  if (failed(verify(*s.module)))
    throw std::runtime_error(what_ + ": generated IR does not verify: " +
                             s.diagnostics);
  mlirText.clear();
  {
    llvm::raw_string_ostream os(mlirText);
    s.module->print(os);
  }
  PassManager pm(&s.ctx);
  std::string pipeline =
      "gpu.module(convert-nvgpu-to-nvvm,convert-scf-to-cf,"
      "convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),"
      "nvvm-attach-target{chip=sm_80 O=3},gpu-module-to-binary{format=isa}";
  std::string perr;
  llvm::raw_string_ostream perrs(perr);
  if (failed(parsePassPipeline(pipeline, pm, perrs)))
    throw std::runtime_error(what_ + ": pass pipeline: " + perr);
  if (failed(pm.run(*s.module)))
    throw std::runtime_error(what_ + ": lowering to PTX failed: " +
                             s.diagnostics);
  std::string text;
  s.module->walk([&](gpu::BinaryOp bin) {
    for (Attribute o : bin.getObjects())
      if (auto obj = dyn_cast<gpu::ObjectAttr>(o))
        text = obj.getObject().str();
  });
  while (!text.empty() && text.back() == '\0')
    text.pop_back();
  for (const std::string &k : kernels_)
    if (text.find(".entry " + k) == std::string::npos)
      throw std::runtime_error(what_ + ": no PTX entry '" + k +
                               "' after lowering (" +
                               std::to_string(text.size()) + " bytes of PTX)");
  return text;
}

PtxKernel GpuKernelModule::kernel(const std::string &function, int threads,
                                  int64_t rowsPerBlock, int64_t sharedBytes,
                                  const std::string &abi) {
  PtxKernel k;
  k.function = function;
  k.threads = threads;
  k.rowsPerBlock = int(rowsPerBlock);
  k.sharedBytes = sharedBytes;
  k.computeCapability = 80;
  k.abi = abi;
  k.ptx = ptx();
  k.mlir = mlirText;
  return k;
}

} // namespace deltaflow::compiler
