from modelport.cli.app import main

main()
