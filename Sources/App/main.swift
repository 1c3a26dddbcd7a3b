// The entry point stays this small: code written at the top level here is main-actor isolated
// in Swift 6, and signal or event-loop callbacks declared here would trap at run time.
import ServiceKit

App.runAndExit(arguments: Array(CommandLine.arguments.dropFirst()))
