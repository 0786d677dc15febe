//===- ErrorOf.h - the message a call throws, for error tests ---*- C++ -*-===//
#ifndef DELTAFLOW_TEST_ERROROF_H
#define DELTAFLOW_TEST_ERROROF_H

#include <functional>
#include <stdexcept>
#include <string>

/// The what() of the exception `fn` throws, or "" when it returns.
inline std::string errorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const std::exception &e) {
    return e.what();
  }
  return "";
}

#endif // DELTAFLOW_TEST_ERROROF_H
