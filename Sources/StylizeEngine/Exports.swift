// The engine's API speaks in Tensor, RGBImage and ModelError: an app that imports
// StylizeEngine gets them without importing the layers below.
@_exported import StylizeModels
