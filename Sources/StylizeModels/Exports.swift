@_exported import StylizeCore
